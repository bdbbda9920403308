import { consoleAssets } from './assets.js';
import { html, type Renderable, type SafeHtml } from './html.js';

export type NavKey =
  | 'overview'
  | 'identities'
  | 'apps'
  | 'vaults'
  | 'resourceGroups'
  | 'users'
  | 'registrations'
  | 'provisioning'
  | 'audit';

const NAV: readonly { key: NavKey; href: string; label: string }[] = [
  { key: 'overview', href: '/console/', label: 'Overview' },
  { key: 'identities', href: '/console/identities', label: 'Managed identities' },
  { key: 'apps', href: '/console/apps', label: 'Apps' },
  { key: 'vaults', href: '/console/vaults', label: 'Key vaults' },
  { key: 'resourceGroups', href: '/console/resource-groups', label: 'Resource groups' },
  { key: 'users', href: '/console/users', label: 'Users' },
  { key: 'registrations', href: '/console/app-registrations', label: 'App registrations' },
  { key: 'provisioning', href: '/console/provisioning-keys', label: 'Provisioning keys' },
  { key: 'audit', href: '/console/audit', label: 'Audit log' },
];

export interface Flash {
  kind: 'success' | 'error' | 'info';
  text: string;
}

/** A failed action, shown at the top of the page it came from. */
export interface ErrorState {
  status: number;
  code: string;
  message: string;
}

function head(title: string): SafeHtml {
  const a = consoleAssets();
  return html`<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Latchkey</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${a.css.url}">
<script src="${a.js.url}" defer></script>
</head>`;
}

const errorTitle = (e: ErrorState) =>
  e.status === 403
    ? 'You do not have permission to do this'
    : e.status === 404
      ? 'Not found'
      : e.status === 409
        ? 'Conflict'
        : e.status === 429
          ? 'Too many requests'
          : e.status >= 500
            ? 'Something went wrong'
            : 'The request was not accepted';

/** The error state of a page: what failed, the code and the server's message (never a stack trace). */
export function errorAlert(e: ErrorState): SafeHtml {
  return html`<div class="alert alert-error" role="alert" id="error">
<strong>${errorTitle(e)} (${e.status} ${e.code})</strong>
<p>${e.message}</p>
${e.status === 403 ? html`<p>Nothing was changed. Ask an Owner of the scope for a role that allows it.</p>` : ''}
</div>`;
}

/** The page of a signed-in user: top bar, navigation, flash messages, main content. */
export function consoleShell(p: {
  title: string;
  nav: NavKey | null;
  user: { displayName: string; userName: string | null };
  tenant: string;
  logoutCsrf: string;
  flash?: Flash | undefined;
  error?: ErrorState | undefined;
  body: Renderable;
}): SafeHtml {
  return html`<!doctype html>
<html lang="en">
${head(p.title)}
<body>
<a class="skip-link" href="#main">Skip to main content</a>
<header class="topbar">
<a class="brand" href="/console/">Latchkey</a>
<span class="tenant">Tenant ${p.tenant}</span>
<div class="user">
<span>${p.user.displayName}${p.user.userName ? html` <span class="visually-hidden">(${p.user.userName})</span>` : ''}</span>
<form method="post" action="/console/logout"><input type="hidden" name="_csrf" value="${p.logoutCsrf}"><button type="submit">Sign out</button></form>
</div>
</header>
<div class="layout">
<nav class="sidenav" aria-label="Main">
<ul>
${NAV.map(
  (n) =>
    html`<li><a href="${n.href}"${n.key === p.nav ? html` aria-current="page"` : ''}>${n.label}</a></li>`,
)}
</ul>
</nav>
<main id="main" tabindex="-1">
<div id="live-status" class="visually-hidden" role="status" aria-live="polite"></div>
<div aria-live="polite">${p.flash ? html`<div class="alert alert-${p.flash.kind}">${p.flash.text}</div>` : ''}</div>
${p.error ? errorAlert(p.error) : ''}
${p.body}
</main>
</div>
</body>
</html>`;
}

/** A page outside a session (sign-in, signed out, sign-in errors). */
export function plainShell(p: { title: string; body: Renderable }): SafeHtml {
  return html`<!doctype html>
<html lang="en">
${head(p.title)}
<body>
<a class="skip-link" href="#main">Skip to main content</a>
<header class="topbar"><span class="brand">Latchkey</span></header>
<main id="main" class="signin" tabindex="-1">
${p.body}
</main>
</body>
</html>`;
}

/** Breadcrumbs: every item but the last is a link. */
export function breadcrumbs(items: readonly { label: string; href?: string }[]): SafeHtml {
  return html`<nav class="breadcrumbs" aria-label="Breadcrumb"><ol>${items.map((i, n) =>
    i.href && n < items.length - 1
      ? html`<li><a href="${i.href}">${i.label}</a></li>`
      : html`<li><span aria-current="page">${i.label}</span></li>`,
  )}</ol></nav>`;
}

/** Tabs of a resource's sub pages. */
export function tabs(items: readonly { label: string; href: string; current: boolean }[]): SafeHtml {
  return html`<nav class="tabs" aria-label="Sections"><ul>${items.map(
    (t) => html`<li><a href="${t.href}"${t.current ? html` aria-current="page"` : ''}>${t.label}</a></li>`,
  )}</ul></nav>`;
}
