// Session templates exported in the format of py_deid/config/device_templates.toml (py_deid.pixels.templates
// reads it): a [[template]] per device and size, matched on manufacturer and model (case-insensitive substrings).
// A JSON string is a valid TOML basic string, so values are written with JSON.stringify.
export function templatesToml(templates, when = new Date()) {
  const lines = ['# Device templates made by a reviewer in py_deid\'s review screen.',
    `# Exported ${when.toISOString()}; add them to device_templates.toml after checking them.`, ''];
  templates.forEach((t, i) => {
    lines.push('[[template]]',
      `name = ${JSON.stringify(`Reviewer template ${i + 1}: ${t.manufacturer} ${t.model}, ${t.columns}x${t.rows}`.trim())}`);
    if (t.manufacturer) lines.push(`manufacturer = ${JSON.stringify(t.manufacturer.toLowerCase())}`);
    if (t.model) lines.push(`model = ${JSON.stringify(t.model.toLowerCase())}`);
    lines.push(`rows = ${t.rows}`, `columns = ${t.columns}`,
      `boxes = [${t.boxes.map((b) => `[${b.map((v) => Math.round(v)).join(', ')}]`).join(', ')}]`,
      'seen_on = "review session"', '');
  });
  return lines.join('\n');
}
