// Renders /api/openapi.json as a list of operations, each with a small try-it form. Built with DOM calls and
// textContent only: the document's strings never become markup.
(() => {
  const element = (tag, properties = {}, children = []) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(properties)) {
      if (key === 'text') node.textContent = value;
      else if (key === 'className') node.className = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) node.append(child);
    return node;
  };

  const field = (label, input) => element('label', {}, [label, input]);

  function tryItForm(path, method, operation) {
    const form = element('form');
    const parameters = operation.parameters ?? [];
    for (const parameter of parameters) {
      const input = element('input', { name: `${parameter.in}:${parameter.name}`, placeholder: parameter.schema?.default === undefined ? '' : String(parameter.schema.default) });
      form.append(field(`${parameter.name} (${parameter.in}${parameter.required ? ', required' : ''})`, input));
    }
    const content = operation.requestBody?.content ?? {};
    const multipart = content['multipart/form-data'];
    const json = content['application/json'];
    if (multipart) {
      for (const [name, schema] of Object.entries(multipart.schema?.properties ?? {})) {
        const binary = schema.format === 'binary' || schema.items?.format === 'binary';
        const input = binary ? element('input', { type: 'file', name: `form:${name}`, multiple: '' }) : element('input', { name: `form:${name}` });
        form.append(field(`${name} (form field)`, input));
      }
    } else if (json) {
      const textarea = element('textarea', { name: 'json' });
      textarea.value = '{}';
      form.append(field('JSON body', textarea));
    }
    const output = element('pre', { 'aria-live': 'polite' });
    form.append(element('button', { type: 'submit', text: 'Send' }), output);

    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      let url = path;
      const query = new URLSearchParams();
      const body = multipart ? new FormData() : undefined;
      for (const input of form.querySelectorAll('input, textarea')) {
        const [where, name] = input.name.split(':');
        if (where === 'path') url = url.replace(`{${name}}`, encodeURIComponent(input.value));
        else if (where === 'query' && input.value !== '') query.set(name, input.value);
        else if (where === 'form' && input.type === 'file') for (const file of input.files) body.append(name, file);
        else if (where === 'form' && input.value !== '') body.append(name, input.value);
      }
      const request = { method: method.toUpperCase() };
      if (body) request.body = body;
      else if (json) {
        request.body = form.querySelector('textarea').value;
        request.headers = { 'Content-Type': 'application/json' };
      }
      output.textContent = 'sending…';
      try {
        const response = await fetch(`${url}${query.size > 0 ? `?${query}` : ''}`, request);
        const type = response.headers.get('content-type') ?? '';
        const text = type.startsWith('image/') ? `(${type}, ${(await response.blob()).size} bytes)` : await response.text();
        let pretty = text;
        try {
          pretty = JSON.stringify(JSON.parse(text), null, 2);
        } catch {
          // not JSON: show it as it came
        }
        output.textContent = `HTTP ${response.status}\n${pretty}`;
      } catch (error) {
        output.textContent = error.message;
      }
    });
    return form;
  }

  function operationElement(path, method, operation) {
    const streaming = Object.values(operation.responses ?? {}).some((response) => response.content && response.content['text/event-stream']);
    const summary = element('summary', {}, [
      element('span', { className: `method ${method}`, text: method }),
      element('code', { text: path }),
      element('span', { className: 'muted', text: operation.summary ?? '' }),
    ]);
    const body = streaming
      ? element('p', { className: 'muted', text: 'A server-sent event stream: open it with EventSource or curl -N.' })
      : tryItForm(path, method, operation);
    return element('details', { className: 'operation card' }, [summary, body]);
  }

  fetch('/api/openapi.json')
    .then((response) => response.json())
    .then((documentBody) => {
      document.getElementById('api-title').textContent = `${documentBody.info.title} ${documentBody.info.version}`;
      document.getElementById('api-description').textContent = documentBody.info.description ?? '';
      const list = document.getElementById('operations');
      for (const [path, methods] of Object.entries(documentBody.paths)) {
        for (const [method, operation] of Object.entries(methods)) list.append(operationElement(path, method, operation));
      }
    })
    .catch((error) => (document.getElementById('api-description').textContent = `cannot load the API document: ${error.message}`));
})();
