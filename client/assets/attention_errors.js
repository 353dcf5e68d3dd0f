window.attnErrors = [];
window.onerror = function (message, source, line) {
  var text = String(message) + ' (line ' + line + ')';
  var b = document.body;
  if (!b) { window.attnErrors.push(text); return; }
  var prev = b.getAttribute('data-errors') || '';
  b.setAttribute('data-errors', prev ? prev + ' | ' + text : text);
};
