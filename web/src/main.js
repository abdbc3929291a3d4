// The investigator page: the uploader, full screen. Configuration comes from the element's attributes in
// index.html (never from the URL: a token or an identifier in a URL would end up in logs and history).
import './deid-uploader.js';
