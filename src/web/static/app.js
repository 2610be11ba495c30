// Every page: an action the server refuses (role, expired session, a conflict) says why next to the element that
// asked, instead of failing silently (htmx swaps only successful answers).
(() => {
  function showError(element, message) {
    let line = element.nextElementSibling;
    if (!line || !line.classList.contains('action-error')) {
      line = document.createElement('span');
      line.className = 'action-error';
      line.setAttribute('role', 'alert');
      element.after(line);
    }
    line.textContent = message;
  }

  function messageOf(xhr) {
    try {
      const body = JSON.parse(xhr.responseText);
      if (body && body.error && body.error.message) return body.error.message;
    } catch {
      // not JSON: fall through to the status line
    }
    return `the server answered HTTP ${xhr.status}`;
  }

  document.addEventListener('htmx:responseError', (event) => showError(event.detail.elt, messageOf(event.detail.xhr)));
  document.addEventListener('htmx:sendError', (event) => showError(event.detail.elt, 'the server cannot be reached'));
  document.addEventListener('htmx:beforeRequest', (event) => {
    const line = event.detail.elt.nextElementSibling;
    if (line && line.classList.contains('action-error')) line.remove();
  });
  // Page scripts report their own failures through the same line.
  window.catdogShowError = showError;
})();
