// Localisation: the shipped languages, the choice of one for an element, and a translator with English fallback.
// A portal may override any string through the `strings` setting ({key: text}); text is always set with
// textContent, so an override can never inject markup.
import de from './de.js';
import en from './en.js';

export const LANGUAGES = Object.freeze({ en, de });

/** The shipped language for a BCP 47 tag ('de-CH' -> 'de'), else English. */
export function pickLanguage(tag) {
  const base = String(tag || '').toLowerCase().split(/[-_]/)[0];
  return Object.hasOwn(LANGUAGES, base) ? base : 'en';
}

/** t(key, params): the string in `lang` (or the override), English if missing, the key itself as a last resort. */
export function translator(lang, overrides = {}) {
  const table = LANGUAGES[pickLanguage(lang)];
  const plural = new Intl.PluralRules(pickLanguage(lang));
  const lookup = (key) => (Object.hasOwn(overrides, key) ? overrides[key]
    : Object.hasOwn(table, key) ? table[key] : Object.hasOwn(en, key) ? en[key] : null);
  return (key, params = {}) => {
    let text = lookup(key);
    if (text === null && 'count' in params) text = lookup(`${key}.${plural.select(Number(params.count))}`) ?? lookup(`${key}.other`);
    if (text === null) return key;
    return String(text).replace(/\{(\w+)\}/g, (m, name) => (Object.hasOwn(params, name) ? String(params[name]) : m));
  };
}

/** Keys a string override may use (the English set), for checking the `strings` setting. */
export const STRING_KEYS = new Set(Object.keys(en).flatMap((k) => [k, k.replace(/\.(one|other)$/, '')]));
