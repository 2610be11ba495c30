import { html } from '../html.js';
import { page } from '../layout.js';

/** The token form: a token pasted here becomes an httpOnly session cookie, so page scripts never hold it. */
export function signInPage({ next, error }: { next: string; error?: string }): string {
  return page({
    title: 'Sign in',
    path: '/signin',
    user: null,
    body: html`<form class="card signin" method="post" action="/signin">
  <p>Paste an API token. An administrator creates one with <code>catdog token create --role viewer|curator|admin</code>.</p>
  ${error ? html`<p class="notice error" role="alert">${error}</p>` : ''}
  <input type="hidden" name="next" value="${next}">
  <label>Token <input type="password" name="token" autocomplete="off" required autofocus size="50"></label>
  <button type="submit">Sign in</button>
</form>`,
  }).text;
}
