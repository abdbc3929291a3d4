// The element's configuration: attributes <-> the core's settings. Values are checked here so a wrong one is
// reported in the element and as a deid-error event, never silently ignored.

export const TRIAL_ATTRIBUTES = {
  'sponsor-name': 'sponsor_name', 'protocol-id': 'protocol_id', 'protocol-name': 'protocol_name',
  'site-id': 'site_id', 'site-name': 'site_name', 'subject-id': 'subject_id',
  'subject-reading-id': 'subject_reading_id', 'time-point-id': 'time_point_id',
  'time-point-description': 'time_point_description', 'coordinating-center-name': 'coordinating_center_name',
};
export const ATTRIBUTES = ['endpoint', 'token', 'options', 'pixels', 'text', 'review', 'pool-size', 'file-timeout',
  'ocr', ...Object.keys(TRIAL_ATTRIBUTES)];
const CHOICES = { pixels: ['auto', 'all', 'off'], text: ['strict', 'phi', 'all'], review: ['never', 'always', 'pixels'] };

export class ConfigError extends Error {
  constructor(message) { super(message); this.name = 'ConfigError'; }
}

export const camel = (name) => name.replace(/-([a-z])/g, (_, c) => c.toUpperCase());

/** The settings the workers get ({options, trial, pixels, text}); throws ConfigError. */
export function coreConfig(get) {
  const config = { options: (get('options') || '').split(/[\s,]+/).filter(Boolean), trial: {} };
  for (const [attr, field] of Object.entries(TRIAL_ATTRIBUTES)) {
    const v = get(attr);
    if (v) config.trial[field] = v;
  }
  for (const name of ['pixels', 'text']) {
    const v = get(name) || CHOICES[name][0];
    if (!CHOICES[name].includes(v)) throw new ConfigError(`${name} must be one of ${CHOICES[name].join(', ')}`);
    config[name] = v;
  }
  return config;
}

export function reviewPolicy(get) {
  const v = get('review') || 'never';
  if (!CHOICES.review.includes(v)) throw new ConfigError(`review must be one of ${CHOICES.review.join(', ')}`);
  return v;
}

/** The DICOMweb base as an absolute URL; HTTPS except on this machine. */
export function endpointUrl(value, base = location.href) {
  if (!value) return null;
  let url;
  try { url = new URL(value, base); } catch { throw new ConfigError('endpoint is not a valid URL'); }
  const local = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && local)) {
    throw new ConfigError('endpoint must use https');
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new ConfigError('endpoint must not carry credentials, a query or a fragment');
  }
  return url.href.replace(/\/+$/, '');
}

const SESSION_KEY = 'py-deid-session-key';

/** The pseudonym key: the configured one, or a random key for this browser tab (kept across reloads of the tab
 * so a re-drop after a reload yields the same UIDs and nothing is uploaded twice). */
export function pseudonymKey(configured) {
  if (configured) {
    const bytes = typeof configured === 'string' ? hexBytes(configured) : new Uint8Array(configured);
    if (bytes.length < 16) throw new ConfigError('the pseudonym key must be at least 16 bytes');
    return { key: bytes, session: false };
  }
  let hex = null;
  try { hex = sessionStorage.getItem(SESSION_KEY); } catch { /* storage blocked: key for this page only */ }
  if (!hex || hex.length !== 64) {
    hex = Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, '0')).join('');
    try { sessionStorage.setItem(SESSION_KEY, hex); } catch { /* ignore */ }
  }
  return { key: hexBytes(hex), session: true };
}

function hexBytes(hex) {
  const clean = String(hex).trim();
  if (!/^([0-9a-fA-F]{2})+$/.test(clean)) throw new ConfigError('the pseudonym key must be hex text or bytes');
  return Uint8Array.from(clean.match(/../g), (b) => parseInt(b, 16));
}
