// The investigator page's service worker (served at the site's root, registered by app/main.js): once the page
// has loaded, it opens and de-identifies without a network. It precaches every file of the build manifest, each
// fetched with its sha256 as Subresource Integrity (a file that does not match is not cached), and answers those
// files from the cache. Nothing else is touched: uploads (/dicomweb), page-settings.json and manifest.json go to
// the network. build_wasm.py writes BUILD_ID above this comment: a new build is a new worker with a new cache.
/* global BUILD_ID */  // the first line build_wasm.py writes
const CACHE = `py-deid-${BUILD_ID}`;
const SKIP = new Set(['sw.js', 'headers.json', 'manifest.json', 'page-settings.json']);
const scope = new URL(self.registration.scope);

function hexToBase64(hex) {
  return btoa(String.fromCharCode(...hex.match(/../g).map((b) => parseInt(b, 16))));
}

async function precache() {
  const response = await fetch(new URL('manifest.json', scope), { cache: 'no-store' });
  if (!response.ok) throw new Error('no manifest');
  const { files } = await response.json();
  const cache = await caches.open(CACHE);
  for (const [rel, { sha256 }] of Object.entries(files)) {
    if (SKIP.has(rel)) continue;
    const url = new URL(rel, scope);
    if (await cache.match(url)) continue;  // an interrupted install resumes where it stopped
    const got = await fetch(url, { cache: 'no-store', integrity: `sha256-${hexToBase64(sha256)}` });
    if (!got.ok) throw new Error(`precache: HTTP ${got.status}`);
    await cache.put(url, got);
  }
}

self.addEventListener('install', (event) => {
  event.waitUntil(precache().then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name.startsWith('py-deid-') && name !== CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== scope.origin || !url.pathname.startsWith(scope.pathname)) return;
  const rel = url.pathname.slice(scope.pathname.length);
  if (SKIP.has(rel) || rel.startsWith('dicomweb/')) return;
  const key = new URL(rel === '' ? 'index.html' : rel, scope);
  event.respondWith((async () => {
    const hit = await (await caches.open(CACHE)).match(key);
    return hit || fetch(request);
  })());
});
