// The investigator page: the uploader, full screen. Configuration comes from the element's attributes in
// index.html (never from the URL: a token or an identifier in a URL would end up in logs and history).
// `py-deid serve` also answers page-settings.json ({review}) so its --review reaches the page; elsewhere the file is
// absent and index.html's own review="pixels" holds.
import './deid-uploader.js';

const REVIEW = new Set(['pixels', 'always', 'never']);

async function applyServedSettings(el) {
  const initial = el.getAttribute('review');
  let settings;
  try {
    const response = await fetch(new URL('page-settings.json', document.baseURI), { cache: 'no-store', credentials: 'same-origin' });
    if (!response.ok) return;
    settings = await response.json();
  } catch { return; }  // offline or not served by `py-deid serve`: the page's default stands
  // Only while nobody (a script, a test) changed the attribute since the page loaded.
  if (REVIEW.has(settings?.review) && el.getAttribute('review') === initial) el.setAttribute('review', settings.review);
}

const el = document.querySelector('deid-uploader');
if (el) applyServedSettings(el);

// Offline once loaded: the service worker precaches the build (../sw.js, at the site's root). Best effort: without
// it (a private window, an http: origin other than localhost) the page works online as before. Registered once the
// de-identifier has started (or failed to), so that its precaching (every file of the build, hashed) does not
// compete with the first start; at the latest after START_GRACE_MS.
const START_GRACE_MS = 30000;

function registerServiceWorker() {
  navigator.serviceWorker.register(new URL('../sw.js', import.meta.url), { scope: new URL('../', import.meta.url).pathname })
    .catch(() => {});
}

if ('serviceWorker' in navigator) {
  let registered = false;
  const once = () => {
    if (registered) return;
    registered = true;
    registerServiceWorker();
  };
  if (el) {
    el.addEventListener('deid-progress', (/** @type {CustomEvent} */ { detail }) => {
      if (detail?.phase === 'startup' && detail.stage === 'packages' && detail.state !== 'start') once();
    });
    el.addEventListener('deid-error', once);
    setTimeout(once, START_GRACE_MS);
  } else {
    once();
  }
}
