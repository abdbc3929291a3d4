// De-identified instances released for upload and not yet acknowledged, kept in IndexedDB per endpoint, so a
// reload (or a browser closed while offline) loses none of them: the page uploads them when it opens again and
// the endpoint answers. Only de-identifier output is kept here (what would be sent anyway) with its PHI-free
// record; never a file name or an original value. Acknowledged or refused instances are removed.
import { openStore } from './idb.js';

const DB = 'py-deid-outbox';
const STORE = 'pending';

/** @returns {Promise<IDBDatabase>} */
function open() {
  return openStore(DB, STORE, 'id');
}

function done(tx) {
  return new Promise((resolve) => { tx.oncomplete = () => resolve(true); tx.onerror = () => resolve(false); tx.onabort = () => resolve(false); });
}

export class Outbox {
  constructor(endpoint) {
    this.endpoint = String(endpoint);
    this.db = open().catch(() => null);  // no IndexedDB: uploads still wait for the network, for this page only
  }

  #id(sopUid) { return `${this.endpoint}|${sopUid}`; }

  async put(record, bytes) {
    const db = await this.db;
    if (!db) return;
    const tx = db.transaction(STORE, 'readwrite');
    tx.objectStore(STORE).put({ id: this.#id(record.sopUid), endpoint: this.endpoint, record, bytes, at: Date.now() });
    await done(tx);
  }

  async delete(sopUid) {
    const db = await this.db;
    if (!db) return;
    const tx = db.transaction(STORE, 'readwrite');
    tx.objectStore(STORE).delete(this.#id(sopUid));
    await done(tx);
  }

  /** [{record, bytes}] of this endpoint, oldest first. */
  async all() {
    const db = await this.db;
    if (!db) return [];
    return new Promise((resolve) => {
      const req = db.transaction(STORE).objectStore(STORE).getAll();
      req.onsuccess = () => resolve(req.result.filter((r) => r.endpoint === this.endpoint).sort((a, b) => a.at - b.at)
        .map(({ record, bytes }) => ({ record, bytes })));
      req.onerror = () => resolve([]);
    });
  }
}
