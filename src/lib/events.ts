import { EventEmitter } from 'node:events';

/**
 * In-process change notifications: caches subscribe, writers publish. In a
 * multi-node deployment the storage layer relays these through PostgreSQL
 * LISTEN/NOTIFY (src/storage/notify.ts), so every node's caches hear them.
 */
export type ChangeTopic =
  | 'principal'
  | 'roleAssignment'
  | 'vault'
  | 'signingKey'
  | 'provisioningKey'
  | 'app'
  /** A secret changed: `{vault id}|{name, lower case}` (src/vault/secret-cache.ts). */
  | 'secret'
  /** A key changed (any version, its state or its name's certificate): `{vault id}|{name, lower case}` (src/vault/key-record-cache.ts). */
  | 'key'
  /** A principal's client credentials (secrets, certificates) changed: the principal's id. */
  | 'credential'
  /** A tenant was created (or its default changed): the tenant's id. */
  | 'tenant'
  /** A tenant's Latchkey settings changed (its federation issuers): the tenant's id. */
  | 'tenantSettings';

export const CHANGE_TOPICS: readonly ChangeTopic[] = [
  'principal',
  'roleAssignment',
  'vault',
  'signingKey',
  'provisioningKey',
  'app',
  'secret',
  'key',
  'credential',
  'tenant',
  'tenantSettings',
];

export interface ChangeBus {
  publish(topic: ChangeTopic, id: string): void;
  subscribe(topic: ChangeTopic, fn: (id: string) => void): () => void;
  /**
   * Called when changes may have been missed (the relay reconnected, or could not
   * say what changed): a cache that hears it drops everything it holds.
   */
  onResync(fn: () => void): () => void;
}

/** The bus as the relay sees it: a hook for outgoing changes, local-only delivery for incoming ones. */
export interface RelayableChangeBus extends ChangeBus {
  /** Set by the relay: every local `publish` is handed to it (after the local subscribers). */
  relay?: ((topic: ChangeTopic, id: string) => void) | undefined;
  /** A change heard from the relay: local subscribers only, never relayed again. */
  deliver(topic: ChangeTopic, id: string): void;
  /** Tells every subscribed cache to drop everything (local only). */
  resync(): void;
}

export function createChangeBus(): RelayableChangeBus {
  const ee = new EventEmitter();
  ee.setMaxListeners(100);
  const RESYNC = Symbol('resync');
  const bus: RelayableChangeBus = {
    publish(topic, id) {
      ee.emit(topic, id);
      bus.relay?.(topic, id);
    },
    subscribe(topic, fn) {
      ee.on(topic, fn);
      return () => ee.off(topic, fn);
    },
    onResync(fn) {
      ee.on(RESYNC, fn);
      return () => ee.off(RESYNC, fn);
    },
    deliver(topic, id) {
      ee.emit(topic, id);
    },
    resync() {
      ee.emit(RESYNC);
    },
  };
  return bus;
}
