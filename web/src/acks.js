// What the endpoint has acknowledged, kept across reloads so nothing is sent twice or forgotten.
// Stored per endpoint: the *output* SOP Instance UID (a keyed pseudonym) and the sha256 of the bytes sent.
// Nothing else: no file names, no original UIDs, no values from the files.
import { openStore } from './idb.js';

const DB = 'py-deid-uploads';
const STORE = 'acknowledged';

/** @returns {Promise<IDBDatabase>} */
function open() {
  return openStore(DB, STORE, 'id');
}

export class AckStore {
  constructor(endpoint) {
    this.endpoint = String(endpoint);
    this.db = open().catch(() => null);  // no IndexedDB (private mode): remember for this page only
    this.memory = new Map();
  }

  #id(sopUid) { return `${this.endpoint}|${sopUid}`; }

  async get(sopUid) {
    if (this.memory.has(sopUid)) return this.memory.get(sopUid);
    const db = await this.db;
    if (!db) return null;
    return new Promise((resolve) => {
      const req = db.transaction(STORE).objectStore(STORE).get(this.#id(sopUid));
      req.onsuccess = () => resolve(req.result ? req.result.sha256 : null);
      req.onerror = () => resolve(null);
    });
  }

  async put(sopUid, sha256) {
    this.memory.set(sopUid, sha256);
    const db = await this.db;
    if (!db) return;
    await new Promise((resolve) => {
      const tx = db.transaction(STORE, 'readwrite');
      tx.objectStore(STORE).put({ id: this.#id(sopUid), sha256, at: Date.now() });
      tx.oncomplete = resolve;
      tx.onerror = resolve;
    });
  }
}
