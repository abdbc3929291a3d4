// A tiny element builder: text only (textContent), never HTML, so no value from a file can become markup.
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'className') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k in node && typeof v !== 'string') node[k] = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) node.append(c instanceof Node ? c : String(c));
  return node;
}

export function button(label, onclick, props = {}) {
  return el('button', { type: 'button', part: 'review-button', onclick, ...props }, label);
}

export function select(options, props = {}) {
  return el('select', { part: 'review-input', ...props },
    ...Object.entries(options).map(([value, label]) => el('option', { value }, label)));
}

/** A DICOM person name (FAMILY^Given^Middle^Prefix^Suffix) as people write it: "FAMILY, Given Middle". */
export function personName(value) {
  const [family = '', given = '', middle = '', prefix = '', suffix = ''] = String(value || '').split('=')[0].split('^');
  const rest = [prefix, given, middle, suffix].filter(Boolean).join(' ');
  return family && rest ? `${family}, ${rest}` : family || rest;
}
