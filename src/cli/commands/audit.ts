import { Command } from 'commander';
import { ctx, print } from '../context.js';
import { CliError } from '../errors.js';
import { api } from '../session.js';
import { parseTimeMs, positiveInt, resolvePrincipal, show } from './arm.js';

interface Event {
  time: string;
  operation: string;
  status: number;
  vault: string | null;
  callerOid: string | null;
  callerAppId: string | null;
  target: string | null;
}
interface Page {
  value: Event[];
  nextLink: string | null;
}

/** At most this many distinct callers are looked up for one table. */
const MAX_NAMES = 100;

/**
 * Callers' display names for the table view, by object id or app id, through the directory
 * (as `role assignment list` does): an id the caller may not read, or past {@link MAX_NAMES}, keeps its id.
 */
async function callerNames(
  c: ReturnType<typeof ctx>,
  events: readonly Event[],
): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  const ids = [...new Set(events.map((e) => e.callerOid ?? e.callerAppId).filter((x): x is string => !!x))];
  for (const id of ids.slice(0, MAX_NAMES)) {
    const p = await resolvePrincipal(c, id).catch(() => undefined);
    if (p?.displayName) names.set(id, p.displayName);
  }
  return names;
}

/** `latchkey audit list|verify`: the tamper-evident audit log. */
export function auditCommand(): Command {
  const audit = new Command('audit').description('The audit log');

  audit
    .command('list')
    .description('List audit events, newest first')
    .option('--vault <name>', 'only events of this vault')
    .option('--caller <who>', 'only events by this caller (object id, app id or user name)')
    .option('--operation <name>', 'only this operation, e.g. SecretGet')
    .option('--provisioning-key <id>', 'only events made with this provisioning key')
    .option('--start-time <iso>', 'events at or after this time (ISO 8601)')
    .option('--end-time <iso>', 'events at or before this time (ISO 8601)')
    .option('--top <n>', 'at most this many events (default 100)', positiveInt('--top', 100_000), 100)
    .action(async (o, cmd: Command) => {
      const c = ctx(cmd);
      const from = parseTimeMs('--start-time', o.startTime);
      const to = parseTimeMs('--end-time', o.endTime);
      const params = new URLSearchParams({
        ...(o.vault ? { vault: o.vault } : {}),
        ...(o.caller ? { caller: o.caller } : {}),
        ...(o.operation ? { operation: o.operation } : {}),
        ...(o.provisioningKey ? { provisioningKey: o.provisioningKey } : {}),
        ...(from !== undefined ? { from: String(from) } : {}),
        ...(to !== undefined ? { to: String(to) } : {}),
        top: String(Math.min(o.top, 100)),
      });
      const out: Event[] = [];
      let path: string | null = `/api/audit?${params.toString()}`;
      while (path && out.length < o.top) {
        const page: Page = await api<Page>(c, 'GET', path);
        out.push(...page.value);
        path = page.nextLink ? new URL(page.nextLink).pathname + new URL(page.nextLink).search : null;
      }
      const events = out.slice(0, o.top);
      // Names only where a person reads them: the table (JSON keeps the ids, as the API answers).
      const names =
        c.output === 'table' && !c.query ? await callerNames(c, events) : new Map<string, string>();
      show(c, events, (e) => {
        const id = e.callerOid ?? e.callerAppId;
        return {
          Time: e.time,
          Operation: e.operation,
          Status: e.status,
          Vault: e.vault,
          Caller: id ? (names.get(id) ?? id) : null,
          Target: e.target,
        };
      });
    });

  audit
    .command('verify')
    .description('Verify the hash chain of the whole log; exits non-zero at the first broken link')
    .action(async (_o, cmd: Command) => {
      const c = ctx(cmd);
      const r = await api<{ ok: boolean; count: number; brokenAt?: number; reason?: string }>(
        c,
        'POST',
        '/api/audit/verify',
      );
      print(c, r);
      if (!r.ok) throw new CliError(`the audit log is broken at event ${r.brokenAt}: ${r.reason}`);
    });
  return audit;
}
