// The PostgreSQL change relay (src/storage/notify.ts) in-process: two "nodes" (two pools, two
// buses) on one fresh schema. test/scaleout.test.ts covers it end to end with real processes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { LatchkeyError } from '../src/errors/index.js';
import { type ChangeTopic, createChangeBus, type RelayableChangeBus } from '../src/lib/events.js';
import { type ChangeRelay, channelFor, startChangeRelay } from '../src/storage/notify.js';
import { openDatabase } from '../src/storage/open.js';
import type { Database } from '../src/storage/port.js';
import { createTestSchema, type TestSchema } from './helpers/postgres.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ok: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

interface TestNode {
  db: Database;
  bus: RelayableChangeBus;
  relay: ChangeRelay;
  heard: { topic: ChangeTopic; id: string }[];
  resyncs: number;
}

describe('change relay (PostgreSQL LISTEN/NOTIFY)', () => {
  let schema: TestSchema;
  let a: TestNode;
  let b: TestNode;

  const node = async (id: string): Promise<TestNode> => {
    const db = await openDatabase(schema.url, { applicationName: `latchkey ${id}` });
    const bus = createChangeBus();
    const n = { db, bus, heard: [], resyncs: 0 } as unknown as TestNode;
    for (const t of ['principal', 'vault'] as const)
      bus.subscribe(t, (v) => n.heard.push({ topic: t, id: v }));
    bus.onResync(() => n.resyncs++);
    n.relay = await startChangeRelay({
      url: schema.url,
      db,
      bus,
      nodeId: id,
      // A heartbeat is echoed every 100 ms; a gap only after 10 s without an echo: no test here waits on the
      // timeout (a killed connection ends at once). With 500 ms, an echo delayed that long (PostgreSQL
      // or this process starved while a heartbeat was in flight) would be a gap, a reconnect and a
      // second resync, failing "resynced once" (not seen here: a 700 ms stall between heartbeats passed).
      options: { heartbeatMs: 100, heartbeatTimeoutMs: 10_000, backoffMinMs: 20, backoffMaxMs: 200 },
    });
    return n;
  };

  before(async () => {
    schema = await createTestSchema();
    a = await node('node-a');
    b = await node('node-b');
  });
  after(async () => {
    for (const n of [a, b]) {
      await n?.relay.close();
      await n?.db.close();
    }
    await schema?.drop();
  });

  test('the channel is per schema; each node resynced when it began listening', () => {
    assert.equal(a.relay.channel, channelFor(schema.schema));
    assert.notEqual(channelFor('public'), channelFor(schema.schema));
    assert.equal(a.resyncs, 1);
    assert.equal(b.resyncs, 1);
    assert.ok(a.relay.connected() && b.relay.connected(), 'a.relay.connected() && b.relay.connected()');
  });

  test('a publish reaches the other node; the publisher hears its own once more, never relays it again', async () => {
    a.heard.length = 0;
    b.heard.length = 0;
    const sentBefore = a.relay.stats.sent + b.relay.stats.sent;
    a.bus.publish('principal', 'p-1');
    await until('b hears p-1', () => b.heard.some((h) => h.id === 'p-1'));
    await until('a hears its echo', () => a.heard.filter((h) => h.id === 'p-1').length === 2);
    await sleep(100);
    assert.deepEqual([...b.heard], [{ topic: 'principal', id: 'p-1' }]);
    assert.equal(a.relay.stats.sent + b.relay.stats.sent - sentBefore, 1, 'one NOTIFY in all');
  });

  test('inside a transaction the notification is delivered at COMMIT, and never after a rollback', async () => {
    b.heard.length = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const tx = a.db.transaction(async (t) => {
      await t.run("INSERT INTO meta (key, value) VALUES ('notify-test', 'x')");
      a.bus.publish('vault', 'committed');
      await gate;
    });
    await sleep(200);
    assert.equal(b.heard.length, 0, 'nothing before the commit');
    release();
    await tx;
    await until('b hears the committed change', () => b.heard.some((h) => h.id === 'committed'));
    // By the time it is heard, the write is visible to the other node.
    assert.ok(
      await b.db.get("SELECT value FROM meta WHERE key = 'notify-test'"),
      'await b.db.get("SELECT value FROM meta WHERE key = \'notify-test\'")',
    );

    await assert.rejects(
      a.db.transaction(async () => {
        a.bus.publish('vault', 'rolled-back');
        throw new Error('abort');
      }),
      /abort/,
    );
    a.bus.publish('vault', 'marker');
    await until('b hears the marker', () => b.heard.some((h) => h.id === 'marker'));
    assert.ok(!b.heard.some((h) => h.id === 'rolled-back'), 'a rolled-back change is never announced');
  });

  test('payloads that are not ours are ignored; an over-long id widens into a resync', async () => {
    const c = new pg.Client({ connectionString: schema.url });
    await c.connect();
    try {
      b.heard.length = 0;
      const resyncs = b.resyncs;
      for (const p of ['not json', '{"n":1}', '{"n":"x","t":"nope","i":"y"}', '{"n":"x","t":"principal"}'])
        await c.query('SELECT pg_notify($1, $2)', [a.relay.channel, p]);
      a.bus.publish('principal', 'x'.repeat(600));
      await until('b resyncs', () => b.resyncs > resyncs);
      assert.equal(b.heard.length, 0);
    } finally {
      await c.end();
    }
  });

  test('a killed LISTEN connection is replaced; the node resyncs once listening again', async () => {
    const c = new pg.Client({ connectionString: schema.url });
    await c.connect();
    try {
      const resyncs = b.resyncs;
      const reconnects = b.relay.stats.reconnects;
      const r = await c.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1',
        ['latchkey-relay node-b'],
      );
      assert.equal(r.rowCount, 1);
      await until('b reconnects', () => b.relay.stats.reconnects > reconnects && b.relay.connected());
      assert.ok(b.resyncs > resyncs, 'caches emptied after the gap');
      b.heard.length = 0;
      a.bus.publish('principal', 'after-gap');
      await until('b hears after the gap', () => b.heard.some((h) => h.id === 'after-gap'));
    } finally {
      await c.end();
    }
  });

  test('a COMMIT that PostgreSQL answers with ROLLBACK is an error (503, retryable), not an acknowledged write', async () => {
    await assert.rejects(
      a.db.transaction(async (t) => {
        await t.run("INSERT INTO meta (key, value) VALUES ('commit-check', 'x')");
        // A statement whose failure nobody awaits aborts the transaction behind the caller's back.
        t.run('SELECT no_such_function()').catch(() => {});
      }),
      (e: unknown) =>
        e instanceof LatchkeyError &&
        e.code === 'ServiceUnavailable' &&
        e.headers['retry-after'] === '1' &&
        (e.cause as { code?: string } | undefined)?.code === '42883',
    );
    assert.equal(await a.db.get("SELECT value FROM meta WHERE key = 'commit-check'"), undefined);
  });
});
