import { LatchkeyError } from '../errors/index.js';
import { DAY_MS } from './model.js';

/**
 * Key rotation policies (`GET|PUT /keys/{name}/rotationpolicy`): lifetime
 * actions `Rotate` or `Notify`, each triggered `timeAfterCreate` (of the
 * current version) or `timeBeforeExpiry` (of its `exp`), as ISO 8601
 * durations; `attributes.expiryTime` gives versions made by rotation an expiry.
 * Azure's rules: expiryTime at least 28 days, triggers at least 7 days (and at
 * least 7 days short of expiryTime), one action of each type, Notify only
 * before expiry.
 */
export interface LifetimeAction {
  trigger: { timeAfterCreate?: string; timeBeforeExpiry?: string };
  action: { type: 'Rotate' | 'Notify' };
}
/** A lifetime action as a request spells it (action type in any case). */
export interface LifetimeActionInput {
  trigger?: { timeAfterCreate?: string | undefined; timeBeforeExpiry?: string | undefined };
  action: { type: string };
}
export interface RotationPolicy {
  lifetimeActions: LifetimeAction[];
  expiryTime: string | null;
  created: number | null;
  updated: number | null;
}

/** What Azure answers for a key without a policy: notify 30 days before expiry. */
export const DEFAULT_POLICY: Readonly<RotationPolicy> = Object.freeze({
  lifetimeActions: [{ trigger: { timeBeforeExpiry: 'P30D' }, action: { type: 'Notify' as const } }],
  expiryTime: null,
  created: null,
  updated: null,
});

const DURATION_RE =
  /^P(?!$)(?:(\d{1,4})Y)?(?:(\d{1,5})M)?(?:(\d{1,5})W)?(?:(\d{1,6})D)?(?:T(?=\d)(?:(\d{1,7})H)?(?:(\d{1,9})M)?(?:(\d{1,10})S)?)?$/;

/** An ISO 8601 duration (`P90D`, `P1Y2M`, `PT36H`) as a function adding it to a time (calendar years and months in UTC). */
export function parseDuration(s: string): ((from: number) => number) | undefined {
  const m = DURATION_RE.exec(s);
  if (!m) return undefined;
  const [y, mo, w, d, h, mi, sec] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x))) as number[];
  return (from: number) => {
    const t = new Date(from);
    if (y || mo) t.setUTCFullYear(t.getUTCFullYear() + y!, t.getUTCMonth() + mo!);
    return t.getTime() + ((w! * 7 + d!) * 24 * 3600 + h! * 3600 + mi! * 60 + sec!) * 1000;
  };
}

const bad = (message: string) => new LatchkeyError('BadParameter', message);

/** Validates a policy from a request; `now` anchors the comparison of calendar durations. */
export function checkPolicy(
  input: { lifetimeActions?: LifetimeActionInput[] | null; expiryTime?: string | null },
  now: number,
): Pick<RotationPolicy, 'lifetimeActions' | 'expiryTime'> {
  const actions = input.lifetimeActions ?? [];
  const span = (what: string, s: string) => {
    const add = parseDuration(s);
    if (!add) throw bad(`${what} '${s.slice(0, 40)}' is not an ISO 8601 duration such as P90D or P1Y.`);
    return add(now) - now;
  };
  const expiry = input.expiryTime ? span('attributes.expiryTime', input.expiryTime) : undefined;
  if (expiry !== undefined && expiry < 28 * DAY_MS)
    throw bad('attributes.expiryTime must be at least 28 days (P28D).');
  const seen = new Set<string>();
  const out: LifetimeAction[] = actions.map((a, i) => {
    const type =
      a.action.type.toLowerCase() === 'rotate'
        ? 'Rotate'
        : a.action.type.toLowerCase() === 'notify'
          ? 'Notify'
          : undefined;
    if (!type) throw bad(`lifetimeActions[${i}].action.type must be Rotate or Notify.`);
    if (seen.has(type)) throw bad(`A rotation policy has at most one ${type} action.`);
    seen.add(type);
    const { timeAfterCreate, timeBeforeExpiry } = a.trigger ?? {};
    if ((timeAfterCreate === undefined) === (timeBeforeExpiry === undefined))
      throw bad(`lifetimeActions[${i}].trigger needs exactly one of timeAfterCreate and timeBeforeExpiry.`);
    if (type === 'Notify' && timeAfterCreate !== undefined)
      throw bad('A Notify action is triggered only by timeBeforeExpiry.');
    const which = timeAfterCreate !== undefined ? 'timeAfterCreate' : 'timeBeforeExpiry';
    const ms = span(`lifetimeActions[${i}].trigger.${which}`, (timeAfterCreate ?? timeBeforeExpiry)!);
    if (ms < 7 * DAY_MS) throw bad(`lifetimeActions[${i}].trigger.${which} must be at least 7 days (P7D).`);
    if (expiry !== undefined && ms > expiry - 7 * DAY_MS)
      throw bad(
        `lifetimeActions[${i}].trigger.${which} must be at least 7 days shorter than attributes.expiryTime.`,
      );
    return {
      trigger: timeAfterCreate !== undefined ? { timeAfterCreate } : { timeBeforeExpiry: timeBeforeExpiry! },
      action: { type },
    };
  });
  return { lifetimeActions: out, expiryTime: input.expiryTime ?? null };
}

/** What a policy asks for now, for a current version created at `created` expiring at `exp`. */
export function dueActions(
  policy: Pick<RotationPolicy, 'lifetimeActions'>,
  version: { created: number; exp: number | null },
  now: number,
): { rotate: boolean; notify: boolean } {
  let rotate = false;
  let notify = false;
  for (const a of policy.lifetimeActions) {
    let due = false;
    if (a.trigger.timeAfterCreate) {
      const add = parseDuration(a.trigger.timeAfterCreate);
      due = !!add && now >= add(version.created);
    } else if (a.trigger.timeBeforeExpiry && version.exp !== null) {
      const add = parseDuration(a.trigger.timeBeforeExpiry);
      due = !!add && now >= version.exp - (add(version.exp) - version.exp);
    }
    if (a.action.type === 'Rotate') rotate ||= due;
    else notify ||= due;
  }
  return { rotate, notify };
}

/** The expiry of a version made now under a policy's `expiryTime` (null: none). */
export function expiryFor(policy: Pick<RotationPolicy, 'expiryTime'>, now: number): number | null {
  const add = policy.expiryTime ? parseDuration(policy.expiryTime) : undefined;
  return add ? add(now) : null;
}
