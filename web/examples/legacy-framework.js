// A stand-in for the global toolkit many older portals load (Prototype.js / jQuery era): it owns window.$ and
// window.$$, declares an AMD loader, and extends built-in prototypes with enumerable methods, including a
// Prototype-style Array#toJSON that changes what JSON.stringify makes of arrays. The uploader must not mind.
(function () {
  window.$ = function (selector) { return document.querySelector(selector); };
  window.$$ = function (selector) { return Array.prototype.slice.call(document.querySelectorAll(selector)); };
  window.define = function () {};
  window.define.amd = {};
  Array.prototype.each = function (fn) { for (var i = 0; i < this.length; i += 1) fn(this[i], i); return this; };
  Array.prototype.last = function () { return this[this.length - 1]; };
  Array.prototype.toJSON = function () { return '[' + this.join(',') + ']'; };
  String.prototype.strip = function () { return this.replace(/^\s+|\s+$/g, ''); };
  Object.prototype.portalToolkit = '1.7';
}());
