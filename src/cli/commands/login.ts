import { Command } from 'commander';
import { type Ctx, print, withCtx } from '../context.js';
import { CliError } from '../errors.js';
import { errorMessage, request } from '../http.js';
import { seg } from '../path.js';
import { ask } from '../prompt.js';
import {
  api,
  CLI_CLIENT_ID,
  clientAssertion,
  getAccessToken,
  MANAGEMENT_RESOURCE,
  readCertificateBundle,
  resolveServer,
  tokenRequest,
} from '../session.js';
import { clearProfile, loadDevServer, loadProfile, type Profile, saveProfile } from '../state.js';
import { listSubscriptions } from './arm.js';

interface AccountInfo {
  tenantId: string;
  tenantDomain: string | null;
  user: { name: string; type: string };
}

const accountView = (p: Profile, tenantDomain?: string | null) => ({
  environmentName: 'Latchkey',
  homeTenantId: p.tenantId,
  id: p.subscriptionId ?? null,
  isDefault: true,
  name: 'Default',
  state: 'Enabled',
  tenantId: p.tenantId,
  tenantDomain: tenantDomain ?? null,
  server: p.server,
  user: { name: p.name, type: p.kind },
});

/**
 * RFC 8628: asks for a device code, tells the person where to enter it (stderr), and polls the
 * token endpoint at the interval the server gave (longer after `slow_down`) until they have signed in.
 */
async function deviceCodeSignIn(
  server: string,
  ca: string | undefined,
  tenant: string,
  scope: string,
): Promise<{ token: Awaited<ReturnType<typeof tokenRequest>>; userName: string }> {
  const base = `${server}/${seg(tenant)}/oauth2/v2.0`;
  const start = await request('POST', `${base}/devicecode`, {
    ca,
    form: { client_id: CLI_CLIENT_ID, scope },
  });
  if (start.status !== 200) throw new CliError(`sign-in failed: ${errorMessage(start)}`);
  const d = start.body as { device_code: string; message: string; interval: number; expires_in: number };
  process.stderr.write(`${d.message}\n`);
  let interval = Math.max(1, d.interval) * 1000;
  const deadline = Date.now() + d.expires_in * 1000;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, interval));
    const res = await request('POST', `${base}/token`, {
      ca,
      form: {
        grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
        client_id: CLI_CLIENT_ID,
        device_code: d.device_code,
      },
    });
    const b = res.body as {
      error?: string;
      access_token?: string;
      expires_in?: number;
      refresh_token?: string;
      id_token?: string;
    };
    if (res.status === 200 && b.access_token) {
      const claims = b.id_token
        ? (JSON.parse(Buffer.from(b.id_token.split('.')[1] ?? '', 'base64url').toString()) as {
            preferred_username?: string;
          })
        : {};
      return {
        token: {
          accessToken: b.access_token,
          expiresOn: Math.floor(Date.now() / 1000) + (b.expires_in ?? 0),
          ...(b.refresh_token ? { refreshToken: b.refresh_token } : {}),
        },
        userName: claims.preferred_username ?? '',
      };
    }
    if (b.error === 'authorization_pending') continue;
    if (b.error === 'slow_down') {
      interval += 5_000;
      continue;
    }
    throw new CliError(`sign-in failed: ${errorMessage(res)}`);
  }
  throw new CliError('sign-in failed: the code expired before anyone signed in; run the command again');
}

/** `latchkey login`, `logout`, `account show|get-access-token`. */
/** The saved login; none is an error that says to sign in. */
function signedIn(): Profile {
  const p = loadProfile();
  if (!p) throw new CliError('not logged in: run `latchkey login`');
  return p;
}

/** An `account` action: needs a login (`p`, the saved one). */
const withLogin = <O>(act: (o: O, c: Ctx, p: Profile) => Promise<void>) =>
  withCtx<O>(async (o, c) => act(o, c, signedIn()));

export function loginCommands(): Command[] {
  const login = new Command('login')
    .description('Sign in as a user (password) or a service principal (secret or certificate)')
    .option('-u, --username <name>', 'user name, or the app id with --service-principal')
    .option(
      '-p, --password <password>',
      'password or client secret (prompted when omitted; LATCHKEY_PASSWORD also works)',
    )
    .option('--service-principal', 'sign in as a service principal')
    .addHelpText(
      'after',
      `
Examples:
  latchkey login -u admin@latchkey.localhost                       # asks for the password
  LATCHKEY_PASSWORD=... latchkey login -u ci@latchkey.localhost     # no terminal (CI)
  latchkey login --service-principal -u APP_ID -p SECRET --tenant TENANT
  latchkey login --use-device-code`,
    )
    .option('--certificate <pem>', 'PEM file with the certificate and private key (service principal)')
    .option('-t, --tenant <tenant>', 'tenant id or domain (default: the server’s default tenant)')
    .option(
      '--use-device-code',
      'sign in as a user with a browser on another device: enter the code shown at the page shown',
    )
    .action(
      withCtx(async (o, c) => {
        const { server, ca, caFile } = resolveServer(c, undefined);
        // Without --tenant: the dev server's tenant when that is the server, else the server's default
        // tenant (its `adfs` alias, as the Azure CLI uses); the real id is read back after sign-in.
        const dev = loadDevServer();
        const tenant: string = o.tenant ?? (dev && dev.server === server ? dev.tenantId : 'adfs');
        if (o.useDeviceCode && (o.servicePrincipal || o.username || o.password || o.certificate))
          throw new CliError(
            '--use-device-code signs a user in on the web page: no -u, -p or --service-principal',
            2,
          );
        const device = o.useDeviceCode
          ? await deviceCodeSignIn(
              server,
              ca,
              tenant,
              `${MANAGEMENT_RESOURCE}/.default openid offline_access`,
            )
          : undefined;
        const username: string =
          device?.userName ??
          o.username ??
          (await ask(o.servicePrincipal ? 'App id: ' : 'User name: ', false, 'pass -u/--username'));
        const profile: Profile = {
          server,
          tenantId: tenant,
          kind: o.servicePrincipal ? 'servicePrincipal' : 'user',
          name: username,
          tokens: {},
        };
        if (caFile) profile.caFile = caFile;
        const scope = `${MANAGEMENT_RESOURCE}/.default`;
        let t: Awaited<ReturnType<typeof tokenRequest>>;
        if (device) {
          t = device.token;
          if (t.refreshToken) profile.refreshToken = t.refreshToken;
        } else if (o.servicePrincipal && o.certificate) {
          const bundle = readCertificateBundle(o.certificate);
          t = await tokenRequest(server, ca, tenant, {
            grant_type: 'client_credentials',
            client_id: username,
            client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
            client_assertion: await clientAssertion(
              bundle,
              username,
              `${server}/${tenant}/oauth2/v2.0/token`,
            ),
            scope,
          });
          profile.certificatePath = (await import('node:path')).resolve(o.certificate);
        } else {
          const password: string =
            o.password ??
            process.env.LATCHKEY_PASSWORD ??
            (await ask(
              o.servicePrincipal ? 'Client secret: ' : 'Password: ',
              true,
              'pass -p/--password, or set LATCHKEY_PASSWORD (keeps it out of shell history)',
            ));
          if (o.servicePrincipal) {
            t = await tokenRequest(server, ca, tenant, {
              grant_type: 'client_credentials',
              client_id: username,
              client_secret: password,
              scope,
            });
            profile.clientSecret = password;
          } else {
            t = await tokenRequest(server, ca, tenant, {
              grant_type: 'password',
              client_id: CLI_CLIENT_ID,
              username,
              password,
              scope: `${scope} offline_access`,
            });
            if (t.refreshToken) profile.refreshToken = t.refreshToken;
          }
        }
        profile.tokens[MANAGEMENT_RESOURCE] = { accessToken: t.accessToken, expiresOn: t.expiresOn };
        // Learn the real tenant id (the user may have given a domain) and the default subscription.
        const res = await request('GET', `${server}/api/account`, {
          ca,
          headers: { authorization: `Bearer ${t.accessToken}` },
        });
        if (res.status !== 200) throw new CliError(errorMessage(res));
        const acct = res.body as AccountInfo;
        profile.tenantId = acct.tenantId;
        const subs = await request('GET', `${server}/subscriptions?api-version=2022-12-01`, {
          ca,
          headers: { authorization: `Bearer ${t.accessToken}` },
        });
        const first = (subs.body as { value?: { subscriptionId: string }[] } | undefined)?.value?.[0];
        if (subs.status === 200 && first) profile.subscriptionId = first.subscriptionId;
        else {
          // A server without the subscriptions API yet: the dev server told us its default subscription.
          const dev = loadDevServer();
          if (dev && dev.server === server && dev.tenantId === acct.tenantId)
            profile.subscriptionId = dev.subscriptionId;
        }
        saveProfile(profile);
        print(c, [accountView(profile, acct.tenantDomain)]);
      }),
    );

  const logout = new Command('logout').description('Forget the login state').action(() => {
    clearProfile();
  });

  const account = new Command('account').description('The signed-in account');
  account
    .command('show')
    .description('Show the signed-in account')
    .action(
      withLogin(async (_o, c, p) => {
        const acct = await api<AccountInfo>(c, 'GET', '/api/account');
        print(c, accountView(loadProfile() ?? p, acct.tenantDomain));
      }),
    );
  account
    .command('list')
    .description('List the subscriptions you can see (isDefault: the one commands use)')
    .action(
      withLogin(async (_o, c, p) => {
        print(
          c,
          (await listSubscriptions(c)).map((s) => ({
            ...accountView(p),
            id: s.subscriptionId,
            isDefault: s.subscriptionId === p.subscriptionId,
            name: s.displayName,
            state: s.state ?? 'Enabled',
          })),
        );
      }),
    );
  account
    .command('set')
    .description('Make a subscription the default of later commands')
    .requiredOption('-s, --subscription <id|name>', 'subscription id or name')
    .action(
      withLogin(async (o, c) => {
        const want = String(o.subscription).toLowerCase();
        const hit = (await listSubscriptions(c)).find(
          (s) => s.subscriptionId.toLowerCase() === want || s.displayName.toLowerCase() === want,
        );
        if (!hit)
          throw new CliError(
            `subscription '${String(o.subscription).slice(0, 100)}' not found: see \`latchkey account list\``,
          );
        const p = signedIn();
        saveProfile({ ...p, subscriptionId: hit.subscriptionId });
      }),
    );
  account
    .command('get-access-token')
    .description('Get an access token for a resource (same JSON as az account get-access-token)')
    .option('--resource <uri>', 'resource, e.g. https://vault.localhost', MANAGEMENT_RESOURCE)
    .option('--scope <scope>', 'scope, e.g. https://vault.localhost/.default')
    .action(
      withCtx(async (o, c) => {
        const resource = o.scope ? String(o.scope).replace(/\/\.default$/, '') : o.resource;
        const { token, expiresOn, profile } = await getAccessToken(c, resource);
        const d = new Date(expiresOn * 1000);
        const local = `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')} ${d.toTimeString().slice(0, 8)}.000000`;
        print(c, {
          accessToken: token,
          expiresOn: local,
          expires_on: expiresOn,
          subscription: profile.subscriptionId ?? null,
          tenant: profile.tenantId,
          tokenType: 'Bearer',
        });
      }),
    );
  return [login, logout, account];
}
