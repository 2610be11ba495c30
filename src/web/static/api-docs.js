// Renders /api/openapi.json as a list of operations, each with a small try-it form and the curl command that sends
// the same request. Built with DOM calls and textContent only: the document's strings never become markup.
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

  // One shell word, quoted so that nothing in it is expanded; a variable the user sets stays outside the quotes.
  const shellQuote = (word) => `'${word.replaceAll("'", "'\\''")}'`;

  /**
   * The curl command for what the form holds now: empty path parameters stay `{name}` placeholders, chosen files
   * are `@name`, and the token comes from $CATDOG_TOKEN (catdog token create) unless the operation is public.
   */
  function curlCommand(form, path, method, operation, streaming) {
    let url = path;
    const query = new URLSearchParams();
    const words = ['curl'];
    if (streaming) words.push('-N');
    if (method !== 'get') words.push('-X', method.toUpperCase());
    if (operation['x-catdog-role'] !== 'public') words.push('-H', '"Authorization: Bearer $CATDOG_TOKEN"');
    for (const input of form.elements) {
      if (!input.name) continue;
      const [where, name] = input.name.split(':');
      if (where === 'path' && input.value !== '') url = url.replace(`{${name}}`, encodeURIComponent(input.value));
      else if (where === 'query' && input.value !== '') query.set(name, input.value);
      else if (where === 'form' && input.type === 'file') {
        const files = input.files.length > 0 ? [...input.files].map((file) => file.name) : ['photo.jpg'];
        for (const file of files) words.push('-F', shellQuote(`${name}=@${file}`));
      } else if (where === 'form' && input.value !== '') words.push('-F', shellQuote(`${name}=${input.value}`));
      else if (where === 'json') words.push('-H', shellQuote('Content-Type: application/json'), '-d', shellQuote(input.value));
    }
    words.push(shellQuote(`${location.origin}${url}${query.size > 0 ? `?${query}` : ''}`));
    return words.join(' ');
  }

  function curlExample(form, path, method, operation, streaming) {
    const code = element('code');
    const show = () => (code.textContent = curlCommand(form, path, method, operation, streaming));
    form.addEventListener('input', show);
    form.addEventListener('change', show);
    show();
    // Scrolls sideways on a phone: focusable so a keyboard can scroll it too.
    return element('div', { className: 'curl' }, [element('p', { className: 'muted', text: 'With curl:' }), element('pre', { tabindex: '0' }, [code])]);
  }

  function tryItForm(path, method, operation) {
    const form = element('form');
    const parameters = operation.parameters ?? [];
    for (const parameter of parameters) {
      const input = element('input', { name: `${parameter.in}:${parameter.name}`, placeholder: parameter.schema?.default === undefined ? '' : String(parameter.schema.default) });
      // The browser refuses to send the form while one is empty (a path parameter always is required).
      if (parameter.required || parameter.in === 'path') input.required = true;
      form.append(field(`${parameter.name} (${parameter.in}${input.required ? ', required' : ''})`, input));
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
      const textarea = element('textarea', { name: 'json:body' });
      textarea.value = '{}';
      form.append(field('JSON body', textarea));
    }
    const output = element('pre', { 'aria-live': 'polite', tabindex: '0' });
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
    const form = tryItForm(path, method, operation);
    const body = streaming ? [element('p', { className: 'muted', text: 'A server-sent event stream: open it with EventSource or curl -N.' })] : [form];
    return element('details', { className: 'operation card' }, [summary, ...body, curlExample(form, path, method, operation, streaming)]);
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
