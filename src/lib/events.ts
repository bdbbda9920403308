import { EventEmitter } from 'node:events';

/**
 * In-process change notifications: caches subscribe, writers publish. In a
 * multi-node deployment the storage layer relays these through PostgreSQL
 * LISTEN/NOTIFY (src/storage/notify.ts), so every node's caches hear them.
 */
export type ChangeTopic = 'principal' | 'roleAssignment' | 'vault' | 'signingKey' | 'provisioningKey' | 'app';

export interface ChangeBus {
  publish(topic: ChangeTopic, id: string): void;
  subscribe(topic: ChangeTopic, fn: (id: string) => void): () => void;
}

export function createChangeBus(): ChangeBus & { relay?: (topic: ChangeTopic, id: string) => void } {
  const ee = new EventEmitter();
  ee.setMaxListeners(100);
  const bus: ChangeBus & { relay?: (topic: ChangeTopic, id: string) => void } = {
    publish(topic, id) {
      ee.emit(topic, id);
      bus.relay?.(topic, id);
    },
    subscribe(topic, fn) {
      ee.on(topic, fn);
      return () => ee.off(topic, fn);
    },
  };
  return bus;
}
