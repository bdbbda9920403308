import { html, type SafeHtml } from '../html.js';
import { plainShell } from '../layout.js';

/** The authority's sign-in form (authorization endpoint). Request parameters travel as hidden fields. */
export function signInPage(p: {
  action: string;
  clientName: string;
  tenant: string;
  hidden: Record<string, string>;
  csrf: string;
  userName: string;
  error?: string | undefined;
  /** A second button that submits `action=deny` without the fields (device sign-in: decline). */
  cancel?: string;
}): SafeHtml {
  return plainShell({
    title: 'Sign in',
    body: html`<div class="panel">
<h1>Sign in</h1>
<p class="lead">to <strong>${p.clientName}</strong> · tenant ${p.tenant}</p>
${p.error ? html`<div class="alert alert-error" role="alert" id="signin-error">${p.error}</div>` : ''}
<form method="post" action="${p.action}">
${Object.entries(p.hidden).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}
<input type="hidden" name="csrf" value="${p.csrf}">
<div class="field">
<label for="username">User name</label>
<input type="text" id="username" name="username" value="${p.userName}" autocomplete="username" autocapitalize="none" spellcheck="false" required${p.userName ? '' : html` autofocus`}>
</div>
<div class="field">
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required${p.userName ? html` autofocus` : ''}>
</div>
<button type="submit" class="btn-primary">Sign in</button>
${p.cancel ? html` <button type="submit" name="action" value="deny" formnovalidate class="btn">${p.cancel}</button>` : ''}
</form>
</div>`,
  });
}

/** An error shown instead of redirecting (the client or redirect URI is not proven). */
export function signInErrorPage(message: string): SafeHtml {
  return plainShell({
    title: 'Sign-in error',
    body: html`<div class="panel">
<h1>Sign-in error</h1>
<div class="alert alert-error" role="alert">${message}</div>
<p>The application that sent you here made a request this authority cannot accept. Nothing was signed in.</p>
</div>`,
  });
}

/** Device sign-in, step 1: the code shown on the other device (RFC 8628 §3.3). */
export function deviceCodePage(p: { action: string; csrf: string; error?: string | undefined }): SafeHtml {
  return plainShell({
    title: 'Enter code',
    body: html`<div class="panel">
<h1>Enter code</h1>
<p class="lead">Enter the code displayed on your app or device to sign it in.</p>
${p.error ? html`<div class="alert alert-error" role="alert" id="signin-error">${p.error}</div>` : ''}
<form method="post" action="${p.action}">
<input type="hidden" name="csrf" value="${p.csrf}">
<div class="field">
<label for="user_code">Code</label>
<input type="text" id="user_code" name="user_code" autocomplete="off" autocapitalize="characters" spellcheck="false" maxlength="16" required autofocus>
</div>
<button type="submit" class="btn-primary">Next</button>
</form>
</div>`,
  });
}

/** Device sign-in, the end: what happened, and that this window may be closed. */
export function deviceDonePage(p: { title: string; message: string; kind: 'info' | 'error' }): SafeHtml {
  return plainShell({
    title: p.title,
    body: html`<div class="panel">
<h1>${p.title}</h1>
<div class="alert alert-${p.kind}"${p.kind === 'error' ? html` role="alert"` : ''}>${p.message}</div>
</div>`,
  });
}
