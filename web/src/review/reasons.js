// Why a reviewer leaves an instance or a series out: codes only (free text could carry PHI). The same codes as
// py_deid.certificate.EXCLUSION_REASONS (a test checks they agree); the texts are what the screen shows.
export const REASONS = Object.freeze({
  'not-in-protocol': 'Not part of the protocol',
  'identity-visible': 'Identifying content that cannot be cleaned (a face, a paper form)',
  duplicate: 'Duplicate of another instance',
  unreadable: 'Image unusable',
  other: 'Other reason recorded at the site',
});
