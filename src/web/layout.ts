import { html, type SafeHtml } from './html.js';

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
}

export function page({ title, path, body, scripts = [], charts = false }: PageOptions): SafeHtml {
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
${scripts.map((script) => html`<script src="/static/${script}" defer></script>`)}
</head>
<body>
<header class="top">
  <a class="brand" href="/">catdog</a>
  <nav>${NAVIGATION.map((item) => html`<a href="${item.href}"${item.href === path ? html` aria-current="page"` : ''}>${item.label}</a>`)}</nav>
  ${path === '/signin' ? '' : html`<form class="signout" method="post" action="/signout"><button type="submit" class="secondary">Sign out</button></form>`}
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
