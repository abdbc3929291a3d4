// The element's configuration: one table of settings, each reachable as an attribute (kebab-case), as a property
// and as a key of the `config` property (camelCase). Values are checked here, all at once, so a wrong one is
// reported in the element and as a deid-error event, never silently ignored. Messages name the setting, never
// quote a secret (token, key).
import { STRING_KEYS } from './i18n/index.js';
import { keyScope, siteKey } from './site-key.js';

export const TRIAL_ATTRIBUTES = {
  'sponsor-name': 'sponsor_name', 'protocol-id': 'protocol_id', 'protocol-name': 'protocol_name',
  'site-id': 'site_id', 'site-name': 'site_name', 'subject-id': 'subject_id',
  'subject-reading-id': 'subject_reading_id', 'time-point-id': 'time_point_id',
  'time-point-description': 'time_point_description', 'coordinating-center-name': 'coordinating_center_name',
};

// The PS3.15 options the core knows (py_deid/options.py; a test keeps the two equal).
export const OPTION_NAMES = ['retain_safe_private', 'retain_uids', 'retain_device_identity',
  'retain_institution_identity', 'retain_patient_characteristics', 'retain_long_full_dates',
  'retain_long_modified_dates', 'clean_descriptors', 'clean_structured_content', 'clean_graphics',
  'clean_pixel_data', 'clean_recognizable_visual_features'];

const CHOICES = { pixels: ['auto', 'all', 'off'], text: ['strict', 'phi', 'all'], review: ['never', 'always', 'pixels'],
  ocr: ['on', 'off'] };

/** name (camelCase) -> {attr (null: property/config only), kind}. Attribute order is the documented order. */
export const SETTINGS = {
  endpoint: { attr: 'endpoint', kind: 'url' },
  token: { attr: 'token', kind: 'secret' },
  tokenProvider: { attr: null, kind: 'function' },
  options: { attr: 'options', kind: 'options' },
  pixels: { attr: 'pixels', kind: 'choice' },
  text: { attr: 'text', kind: 'choice' },
  review: { attr: 'review', kind: 'choice' },
  attestation: { attr: 'attestation', kind: 'statement' },
  ...Object.fromEntries(Object.keys(TRIAL_ATTRIBUTES).map((a) => [camel(a), { attr: a, kind: 'trial' }])),
  pseudonymKey: { attr: 'pseudonym-key', kind: 'key' },
  pseudonymKeyProvider: { attr: null, kind: 'function' },
  modalities: { attr: 'modalities', kind: 'modalities' },
  maxFileSize: { attr: 'max-file-size', kind: 'size' },
  maxBatchSize: { attr: 'max-batch-size', kind: 'size' },
  poolSize: { attr: 'pool-size', kind: 'count' },
  fileTimeout: { attr: 'file-timeout', kind: 'count' },
  ocr: { attr: 'ocr', kind: 'choice' },
  lang: { attr: 'lang', kind: 'lang' },
  strings: { attr: null, kind: 'strings' },
  require: { attr: 'require', kind: 'require' },
};
export const ATTRIBUTES = Object.values(SETTINGS).map((s) => s.attr).filter(Boolean);

export class ConfigError extends Error {
  constructor(message, settings = []) {
    super(message);
    this.name = 'ConfigError';
    this.settings = settings;
  }
}

export function camel(name) { return name.replace(/-([a-z])/g, (_, c) => c.toUpperCase()); }

const blank = (v) => v === undefined || v === null || v === '';
const SIZE = /^(\d+(?:\.\d+)?)\s*(|b|kb|mb|gb|kib|mib|gib)$/i;
const UNITS = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

function words(v) {
  return (Array.isArray(v) ? v.map(String) : String(v).split(/[\s,]+/)).map((w) => w.trim()).filter(Boolean);
}

/** Check one setting; returns the value the element uses (or undefined when unset). Throws a message string. */
function check(name, kind, v) {
  if (blank(v)) return undefined;
  switch (kind) {
    case 'url': return endpointUrl(String(v));
    case 'secret':
      if (typeof v !== 'string' || !/^[\x21-\x7e]+$/.test(v)) throw 'must be printable text without spaces';
      return v;
    case 'function':
      if (typeof v !== 'function') throw 'must be a function (set it as a property or in config)';
      return v;
    case 'options': {
      const names = words(v);
      const unknown = names.filter((n) => !OPTION_NAMES.includes(n));
      if (unknown.length) throw `unknown option ${unknown.map((n) => `"${n}"`).join(', ')}; known: ${OPTION_NAMES.join(' ')}`;
      return names;
    }
    case 'choice': {
      if (!CHOICES[name].includes(String(v))) throw `must be one of ${CHOICES[name].join(', ')}`;
      return String(v);
    }
    case 'trial':
      if (typeof v !== 'string' && typeof v !== 'number') throw 'must be text';
      if (String(v).length > 64 || /[\\\r\n]/.test(String(v))) throw 'must be at most 64 characters on one line, without backslashes';
      return String(v);
    case 'statement':
      if (typeof v !== 'string' || v.length > 2000) throw 'must be text of at most 2000 characters';
      return v;
    case 'require': {
      const names = words(v).map(camel);
      const unknown = names.filter((n) => !Object.hasOwn(SETTINGS, n) || n === 'require');
      if (unknown.length) throw `names unknown settings: ${unknown.join(', ')}`;
      return names;
    }
    case 'key': return pseudonymKeyBytes(v);
    case 'modalities': {
      const codes = words(v).map((w) => w.toUpperCase());
      if (!codes.length || codes.some((c) => !/^[A-Z0-9_]{1,16}$/.test(c))) throw 'must be modality codes such as "CT MR US"';
      return codes;
    }
    case 'size': {
      const m = typeof v === 'number' ? [null, String(v), ''] : SIZE.exec(String(v).trim());
      const n = m && Number(m[1]) * UNITS[m[2].toLowerCase()];
      if (!n || !Number.isFinite(n) || n < 1) throw 'must be a positive size such as 500MB, 2GB or a number of bytes';
      return Math.floor(n);
    }
    case 'count': {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw 'must be a positive whole number';
      if (name === 'poolSize' && n > 16) throw 'must be at most 16';
      return n;
    }
    case 'lang':
      if (!/^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$/.test(String(v))) throw 'must be a language tag such as en or de-CH';
      return String(v);
    case 'strings': {
      if (typeof v !== 'object' || Array.isArray(v)) throw 'must be an object {key: text}';
      const bad = Object.keys(v).filter((k) => !STRING_KEYS.has(k) || typeof v[k] !== 'string');
      if (bad.length) throw `has unknown keys or non-text values: ${bad.slice(0, 5).join(', ')}`;
      return { ...v };
    }
    default: throw 'is not a setting';
  }
}

/**
 * All settings, checked. `get(name)` gives the raw value of a setting (property/config first, then attribute).
 * Unknown keys of a `config` object are errors too (a typo must not be ignored). Throws one ConfigError that
 * lists every wrong setting.
 */
export function resolveSettings(get, configKeys = []) {
  const out = {};
  const problems = [];
  for (const key of configKeys) {
    if (!Object.hasOwn(SETTINGS, key)) problems.push([key, 'is not a setting of <deid-uploader>']);
  }
  for (const [name, { attr, kind }] of Object.entries(SETTINGS)) {
    try {
      out[name] = check(name, kind, get(name));
    } catch (message) {
      if (typeof message !== 'string') throw message;
      problems.push([attr || name, message]);
    }
  }
  // A portal can declare what must be there (e.g. the subject): a missing value is then an error, not a default.
  for (const name of out.require || []) {
    const provided = name === 'token' ? out.token || out.tokenProvider
      : name === 'pseudonymKey' ? out.pseudonymKey || out.pseudonymKeyProvider : out[name];
    if (provided === undefined) problems.push([SETTINGS[name].attr || name, 'is required (require) but missing']);
  }
  if (problems.length) {
    throw new ConfigError(problems.map(([n, m]) => `${n} ${m}`).join('; '), problems.map(([n]) => n));
  }
  for (const name of ['pixels', 'text', 'review']) out[name] ??= CHOICES[name][0];
  out.ocr ??= 'on';
  out.options ??= [];
  out.trial = {};
  for (const [attr, field] of Object.entries(TRIAL_ATTRIBUTES)) {
    if (out[camel(attr)] !== undefined) out.trial[field] = out[camel(attr)];
  }
  return Object.freeze(out);
}

/** The settings the workers get ({options, trial, pixels, text}). */
export function coreConfig(s) {
  return { options: [...s.options], trial: { ...s.trial }, pixels: s.pixels, text: s.text };
}

/** The DICOMweb base as an absolute URL; HTTPS except on this machine. Throws a message (see check()). */
function endpointUrl(value, base = location.href) {
  let url;
  try { url = new URL(value, base); } catch { throw 'is not a valid URL'; }
  const local = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && local)) throw 'must use https';
  if (url.username || url.password || url.search || url.hash) {
    throw 'must not carry credentials, a query or a fragment';
  }
  return url.href.replace(/\/+$/, '');
}

/** A configured pseudonym key as bytes (hex text, ArrayBuffer or typed array); at least 16 bytes. Throws a message. */
function pseudonymKeyBytes(configured) {
  let bytes;
  if (typeof configured === 'string') {
    const clean = configured.trim();
    if (!/^([0-9a-fA-F]{2})+$/.test(clean)) throw 'must be hex text or bytes';
    bytes = Uint8Array.from(clean.match(/../g), (b) => parseInt(b, 16));
  } else if (configured instanceof ArrayBuffer || ArrayBuffer.isView(configured)) {
    bytes = new Uint8Array(ArrayBuffer.isView(configured)
      ? configured.buffer.slice(configured.byteOffset, configured.byteOffset + configured.byteLength) : configured.slice(0));
  } else {
    throw 'must be hex text or bytes';
  }
  if (bytes.length < 16) throw 'must be at least 16 bytes';
  return bytes;
}

const SESSION_KEY = 'py-deid-session-key';

/** A random key for this browser tab (kept across reloads of the tab so a re-drop after a reload yields the same
 * UIDs and nothing is uploaded twice). */
export function sessionKey() {
  let hex = null;
  try { hex = sessionStorage.getItem(SESSION_KEY); } catch { /* storage blocked: key for this page only */ }
  if (!hex || !/^[0-9a-f]{64}$/.test(hex)) {
    hex = Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, '0')).join('');
    try { sessionStorage.setItem(SESSION_KEY, hex); } catch { /* ignore */ }
  }
  return pseudonymKeyBytes(hex);
}

/** The key of a run: from the provider (awaited, with a deadline), the setting, the site key this browser keeps
 * for the endpoint (site-key.js), or, where the browser cannot keep one, the tab's session key. */
export async function resolveKey(s, timeoutMs = 30000) {
  if (s.pseudonymKeyProvider) {
    let timer;
    const deadline = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new ConfigError('pseudonymKeyProvider did not answer in time', ['pseudonymKeyProvider'])), timeoutMs);
    });
    let value;
    try {
      value = await Promise.race([Promise.resolve().then(() => s.pseudonymKeyProvider()), deadline]);
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError('pseudonymKeyProvider failed', ['pseudonymKeyProvider']);
    } finally {
      clearTimeout(timer);
    }
    try {
      return { key: pseudonymKeyBytes(value), session: false };
    } catch (message) {
      throw new ConfigError(`pseudonymKeyProvider returned a key that ${message}`, ['pseudonymKeyProvider']);
    }
  }
  if (s.pseudonymKey) return { key: s.pseudonymKey, session: false };
  const site = await siteKey(keyScope(s.endpoint, s.siteId)).catch(() => null);
  if (site) return { key: site.key, session: false, site: true };
  return { key: sessionKey(), session: true };
}
