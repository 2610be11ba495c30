import { html, type SafeHtml } from './html.js';
import { may, type WebUser } from './user.js';

const NAVIGATION = [
  { href: '/', label: 'Predict' },
  { href: '/review', label: 'Review' },
  { href: '/dataset', label: 'Dataset' },
  { href: '/training', label: 'Training' },
  { href: '/models', label: 'Models' },
  { href: '/jobs', label: 'Jobs' },
  { href: '/api/docs', label: 'API' },
] as const;

/** htmx must not inject its indicator <style> (the CSP forbids inline styles) nor evaluate strings. */
const HTMX_CONFIG = JSON.stringify({ includeIndicatorStyles: false, allowEval: false, allowScriptTags: false });

export interface PageOptions {
  title: string;
  path: string;
  body: SafeHtml;
  /** Page scripts under /static, loaded after the vendor ones. */
  scripts?: string[];
  charts?: boolean;
  /** Null on the sign-in page, which is rendered before anyone is known. */
  user: WebUser | null;
}

/** Who is signed in and as what; Sign in for an anonymous viewer, Sign out only where a session exists. */
function identity(user: WebUser, path: string): SafeHtml {
  const signIn = html`<a class="signin-link" href="/signin?next=${encodeURIComponent(path)}">Sign in</a>`;
  if (user.name === undefined) return html`<div class="identity"><span class="who">not signed in</span> <span class="role-badge">${user.role}</span> ${signIn}</div>`;
  return html`<div class="identity"><span class="who">${user.name}</span> <span class="role-badge">${user.role}</span>
${user.session
    ? html`<form class="signout" method="post" action="/signout"><button type="submit" class="secondary">Sign out</button></form>`
    : ''}</div>`;
}

export interface ActionGate {
  allowed: boolean;
  /** ` disabled` and its explanation for a button the user's role may not press; nothing otherwise. */
  attributes: SafeHtml;
  /** The role needed, shown beside the disabled button. */
  hint: SafeHtml;
}

/** A button for `method path` that the user sees disabled, with the role it needs, when the server would refuse it. */
export function gate(user: WebUser, method: string, path: string): ActionGate {
  if (may(user, method, path)) return { allowed: true, attributes: html``, hint: html`` };
  const needed = user.needs(method, path);
  return {
    allowed: false,
    attributes: html` disabled title="needs the ${needed} role (you have ${user.role})"`,
    hint: html`<span class="needs-role">needs ${needed}</span>`,
  };
}

export function page({ title, path, body, scripts = [], charts = false, user }: PageOptions): SafeHtml {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content="${HTMX_CONFIG}">
<title>${title} · catdog</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/app.css">
<script src="/static/vendor/htmx.min.js" defer></script>
${charts ? html`<script src="/static/vendor/chart.umd.min.js" defer></script>` : ''}
<script src="/static/app.js" defer></script>
${scripts.map((script) => html`<script src="/static/${script}" defer></script>`)}
</head>
<body>
<header class="top">
  <a class="brand" href="/">catdog</a>
  <nav>${NAVIGATION.map((item) => html`<a href="${item.href}"${item.href === path ? html` aria-current="page"` : ''}>${item.label}</a>`)}</nav>
  ${user ? identity(user, path) : ''}
</header>
<main>
<h1>${title}</h1>
${body}
</main>
</body>
</html>`;
}

export const percent = (value: number | null | undefined): string =>
  value === null || value === undefined || Number.isNaN(value) ? '–' : `${(value * 100).toFixed(1)}%`;
