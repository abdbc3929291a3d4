// The site's pseudonym key: created once per endpoint (and trial site) in this browser and kept in IndexedDB,
// sealed by a non-extractable AES-GCM key that lives next to it (a CryptoKey is stored as such: its bytes can
// never be read by a script). Same key, same input, same output: across tabs, reloads and days, so a file
// uploaded twice lines up with itself (the receiver stores it once). The workers need the key's bytes (the core
// computes the HMACs in Python), so it is unsealed for a run and handed to them, never stored in the clear.
// Export/import: a passphrase-protected key file (PBKDF2-SHA256 + AES-256-GCM) that the CLI's --key-file reads
// too (py_deid/site_key.py), for the site's other computers.
import { openStore } from './idb.js';
import { NamedError } from './protocol.js';

const DB = 'py-deid-site-key';
const STORE = 'keys';
export const KEY_FILE_FORMAT = 'py-deid-site-key';
const KEY_FILE_VERSION = 1;
const ITERATIONS = 600000;  // PBKDF2-SHA256, OWASP's 2023 figure
const AAD = new TextEncoder().encode(`${KEY_FILE_FORMAT}/${KEY_FILE_VERSION}`);
export const MIN_PASSPHRASE = 10;

/** @returns {Promise<IDBDatabase>} */
function open() {
  return openStore(DB, STORE, 'scope');
}

export function keyScope(endpoint, siteId) { return `${endpoint || 'local'}|${siteId || ''}`; }

async function seal(bytes) {
  const wrapping = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, wrapping, bytes);
  return { wrapping, iv, sealed, created: new Date().toISOString() };
}

async function unseal(record) {
  return new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv: record.iv }, record.wrapping, record.sealed));
}

/** The stored record of the scope; with `candidate`, stores it unless one exists (one transaction: two tabs
 * starting at once end up with the same key). `replace` overwrites. */
function getOrPut(db, scope, candidate = null, replace = false) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, 'readwrite');
    const store = tx.objectStore(STORE);
    let kept = null;
    const req = store.get(scope);
    req.onsuccess = () => {
      kept = req.result && !replace ? req.result : candidate;
      if (kept && kept !== req.result) store.put({ scope, ...kept });
    };
    tx.oncomplete = () => resolve(kept);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

/** {key: Uint8Array, created} of the scope, made on first use; null where IndexedDB is unavailable. */
export async function siteKey(scope) {
  let db;
  try { db = await open(); } catch { return null; }
  try {
    let record = await getOrPut(db, scope);
    if (!record) record = await getOrPut(db, scope, await seal(crypto.getRandomValues(new Uint8Array(32))));
    return { key: await unseal(record), created: record.created };
  } finally {
    db.close();
  }
}

/** Replace the scope's key (an imported key file). */
export async function storeSiteKey(scope, bytes) {
  const db = await open();
  try { await getOrPut(db, scope, await seal(bytes), true); } finally { db.close(); }
}

const b64 = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)));
const unb64 = (text) => Uint8Array.from(atob(String(text)), (c) => c.charCodeAt(0));

async function passphraseKey(passphrase, salt, iterations, usage) {
  const material = await crypto.subtle.importKey('raw', new TextEncoder().encode(passphrase), 'PBKDF2', false, ['deriveKey']);
  return crypto.subtle.deriveKey({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, material,
    { name: 'AES-GCM', length: 256 }, false, [usage]);
}

function checkPassphrase(passphrase) {
  if (typeof passphrase !== 'string' || [...passphrase].length < MIN_PASSPHRASE) {
    throw new NamedError('KeyFileError', `the passphrase must have at least ${MIN_PASSPHRASE} characters`);
  }
}

/** The key file (JSON text) holding `bytes` sealed under the passphrase. */
export async function exportKeyFile(bytes, passphrase) {
  checkPassphrase(passphrase);
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const key = await passphraseKey(passphrase, salt, ITERATIONS, 'encrypt');
  const sealed = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: AAD }, key, bytes);
  return `${JSON.stringify({
    format: KEY_FILE_FORMAT, version: KEY_FILE_VERSION,
    kdf: { name: 'PBKDF2-SHA256', iterations: ITERATIONS, salt: b64(salt) },
    cipher: { name: 'AES-256-GCM', iv: b64(iv) }, sealed: b64(sealed), exported: new Date().toISOString(),
  }, null, 1)}\n`;
}

/** The key bytes of a key file; throws KeyFileError (wrong passphrase, not a key file). */
export async function importKeyFile(text, passphrase) {
  let doc;
  try { doc = JSON.parse(text); } catch { doc = null; }
  if (doc?.format !== KEY_FILE_FORMAT || doc.version !== KEY_FILE_VERSION || doc.kdf?.name !== 'PBKDF2-SHA256'
      || doc.cipher?.name !== 'AES-256-GCM' || !Number.isInteger(doc.kdf.iterations)) {
    throw new NamedError('KeyFileError', 'this is not a py_deid site key file');
  }
  try {
    const key = await passphraseKey(String(passphrase), unb64(doc.kdf.salt), doc.kdf.iterations, 'decrypt');
    const bytes = new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv: unb64(doc.cipher.iv), additionalData: AAD },
      key, unb64(doc.sealed)));
    if (bytes.length < 16) throw new Error('short');
    return bytes;
  } catch {
    throw new NamedError('KeyFileError', 'the passphrase is wrong or the key file is damaged');
  }
}
