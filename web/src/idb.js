// One IndexedDB object store of the page's own (acknowledged uploads, the outbox, the site key), opened the
// same way by each: version 1, created on first use.

/**
 * @param {string} name the database
 * @param {string} store its one object store
 * @param {string} keyPath the records' key
 * @returns {Promise<IDBDatabase>}
 */
export function openStore(name, store, keyPath) {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(name, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(store, { keyPath });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}
