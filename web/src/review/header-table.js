// The header of one instance before and after: every attribute, what the profile did to it, filterable; the
// free-text attributes that are kept (or were cleaned) are highlighted for the reviewer to read.
import { el } from './dom.js';

export const ACTION_TEXT = {
  X: 'removed', Z: 'emptied', D: 'replaced', U: 'new UID', C: 'cleaned', K: 'kept', set: 'set by de-identifier',
};

export function headerTable(rows, s) {
  const filter = el('input', { type: 'search', className: 'filter', part: 'review-input',
    placeholder: s('header.filter'), 'aria-label': s('header.filter') });
  const changedOnly = el('input', { type: 'checkbox', id: 'review-changed-only' });
  const freeOnly = el('input', { type: 'checkbox', id: 'review-free-only' });
  const count = el('span', { className: 'muted', 'aria-live': 'polite' });
  const body = el('tbody');
  const table = el('table', { className: 'header-table', part: 'review-header' },
    el('caption', { className: 'visually-hidden' }, s('header.caption')),
    el('thead', {}, el('tr', {}, ...['header.attribute', 'header.action', 'header.before', 'header.after']
      .map((k) => el('th', { scope: 'col' }, s(k))))),
    body);
  const draw = () => {
    const q = filter.value.trim().toLowerCase();
    body.replaceChildren();
    let shown = 0;
    for (const r of rows) {
      if (changedOnly.checked && (r.action === 'K' || r.action === 'set')) continue;
      if (freeOnly.checked && !r.freeText) continue;
      const name = `${r.path ? `${r.path} > ` : ''}${r.keyword}`;
      if (q && ![name, r.tag, r.old, r.new, r.action].some((v) => String(v).toLowerCase().includes(q))) continue;
      shown += 1;
      // data-label: the column's name, shown before the value where the table becomes cards (narrow screens).
      const tr = el('tr', { className: `action-${r.action === 'set' ? 'set' : r.action}${r.freeText ? ' free-text' : ''}` },
        el('td', { dataset: { label: s('header.attribute') } }, el('span', { className: 'kw' }, name), el('span', { className: 'tag' }, ` ${r.tag}`)),
        el('td', { dataset: { label: s('header.action') } }, ACTION_TEXT[r.action] || r.action),
        el('td', { className: 'value', dataset: { label: s('header.before') } }, r.old),
        el('td', { className: 'value', dataset: { label: s('header.after') } }, r.new));
      if (r.freeText) tr.title = s('header.freeTextHint');
      body.append(tr);
    }
    count.textContent = s('header.count', { shown, total: rows.length });
  };
  for (const input of [filter, changedOnly, freeOnly]) input.addEventListener('input', draw);
  draw();
  return el('section', { className: 'header-section', 'aria-label': s('header.title') },
    el('h4', {}, s('header.title')),
    el('div', { className: 'row' }, filter,
      el('label', {}, changedOnly, ` ${s('header.changedOnly')}`),
      el('label', {}, freeOnly, ` ${s('header.freeOnly')}`), count),
    el('p', { className: 'legend' }, el('span', { className: 'swatch free-text' }), ` ${s('header.freeTextLegend')}`),
    // Focusable: a scrolling region must be reachable by keyboard to be scrolled.
    el('div', { className: 'table-scroll', tabindex: '0', role: 'region', 'aria-label': s('header.caption') }, table));
}
