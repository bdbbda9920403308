import type { FederatedCredentialInput } from '../../management/federated-credentials.js';
import { confirmed, dangerForm, dataTable, input, postForm, required, seg, text } from '../components.js';
import { type ConsoleContext, done, type FormInput, params, typed, type View } from '../context.js';
import { html, type SafeHtml } from '../html.js';
import type { ConsoleRouter } from '../routes.js';

/**
 * Federated identity credentials (docs/federation.md) as the console shows them: one table and
 * one add form for both owners, a user-assigned identity (its page under Managed identities) and
 * an application registration (its page under App registrations). Each owner's page passes its
 * own service's calls, so the access rules are that service's.
 */

const MAX_NAME = 120;
const MAX_FIELD = 600;
const DEFAULT_AUDIENCE = 'api://AzureADTokenExchange';

/** A credential as the table shows it (the identity's and the application's alike). */
export interface FederatedCredentialRow {
  name: string;
  issuer: string;
  subject: string;
  audiences: readonly string[];
  description: string;
}

/**
 * The "Federated credentials" section of an owner's page: the credentials with a delete each
 * (`{here}/federated-credentials/{name}/delete`), and the add form (`{here}/federated-credentials`),
 * which keeps what was typed when the server refused it.
 */
export function federatedCredentialsSection(
  ctx: ConsoleContext,
  here: string,
  rows: readonly FederatedCredentialRow[],
  lead: string,
): SafeHtml {
  const add = postForm(
    ctx,
    `${here}/federated-credentials`,
    html`${input({ id: 'fic-name', name: 'name', label: 'Name', required: true, maxLength: MAX_NAME, value: typed(ctx, 'name', MAX_NAME), hint: '3–120 letters, digits, hyphens and underscores.' })}
${input({ id: 'fic-issuer', name: 'issuer', label: 'Issuer', required: true, maxLength: MAX_FIELD, value: typed(ctx, 'issuer', MAX_FIELD), hint: "The external tokens' iss, e.g. https://token.actions.githubusercontent.com; it must be allowed by the server and by this tenant's own list, if its admin set one." })}
${input({ id: 'fic-subject', name: 'subject', label: 'Subject', required: true, maxLength: MAX_FIELD, value: typed(ctx, 'subject', MAX_FIELD), hint: 'Compared exactly, e.g. repo:org/repo:ref:refs/heads/main or system:serviceaccount:ns:name.' })}
${input({ id: 'fic-audience', name: 'audience', label: 'Audience', required: true, maxLength: MAX_FIELD, value: typed(ctx, 'audience', MAX_FIELD) || DEFAULT_AUDIENCE })}
${input({ id: 'fic-description', name: 'description', label: 'Description (optional)', maxLength: MAX_FIELD, value: typed(ctx, 'description', MAX_FIELD) })}
<button type="submit" class="btn-primary">Add federated credential</button>`,
  );
  return html`<h2>Federated credentials</h2>
<p>${lead} Deleting one refuses the next exchange at once. <a href="/console/settings/federation">The tenant's allowed issuers</a></p>
${dataTable({
  caption: 'Federated credentials',
  id: 'federated-credentials',
  rows,
  empty: 'No federated credentials.',
  columns: [
    { label: 'Name', cell: (f) => html`<strong>${f.name}</strong>` },
    { label: 'Issuer', cell: (f) => f.issuer },
    { label: 'Subject', cell: (f) => f.subject },
    { label: 'Audience', cell: (f) => f.audiences.join(', ') },
    { label: 'Description', cell: (f) => f.description || html`<span class="muted">—</span>` },
    {
      label: 'Actions',
      cell: (f) =>
        dangerForm(ctx, `${here}/federated-credentials/${seg(f.name)}/delete`, {
          id: `delete-fic-${f.name}`,
          button: 'Delete',
          confirmText: `Delete ${f.name}: the next exchange of its tokens is refused.`,
        }),
    },
  ],
})}
<details class="panel"${rows.length === 0 ? html` open` : ''}><summary>Add a federated credential</summary>${add}</details>`;
}

/**
 * The actions of {@link federatedCredentialsSection} under the owner page `path` (a router path
 * such as `/identities/:rg/:name`): add (name, issuer, subject, one audience, description) and
 * delete with its confirmation, each through the owner's service, then back to the owner's page.
 */
export function registerFederatedCredentialActions(
  r: ConsoleRouter,
  o: {
    path: string;
    /** The owner's page of the request (under /console). */
    here: (ctx: ConsoleContext) => string;
    save: (ctx: ConsoleContext, name: string, input: FederatedCredentialInput) => Promise<unknown>;
    remove: (ctx: ConsoleContext, name: string) => Promise<unknown>;
    view: View;
  },
): void {
  r.action(
    `${o.path}/federated-credentials`,
    async (ctx, form: FormInput) => {
      const name = required(form, 'name', 'The name', MAX_NAME);
      const description = text(form, 'description', MAX_FIELD);
      await o.save(ctx, name, {
        issuer: required(form, 'issuer', 'The issuer', MAX_FIELD),
        subject: required(form, 'subject', 'The subject', MAX_FIELD),
        audiences: [required(form, 'audience', 'The audience', MAX_FIELD)],
        ...(description ? { description } : {}),
      });
      return done(o.here(ctx), `Federated credential ${name} saved.`);
    },
    o.view,
  );
  r.action(
    `${o.path}/federated-credentials/:fic/delete`,
    confirmed(async (ctx) => {
      const name = params(ctx).fic!;
      await o.remove(ctx, name);
      return done(o.here(ctx), `Federated credential ${name} deleted.`);
    }),
    o.view,
  );
}
