import { CatdogError } from '../../errors.js';
import { FINISHED_STATES, JOB_STATES, type JobInfo, type JobState } from '../../jobs/index.js';
import type { ServerDeps } from '../../server/context.js';
import { html, type SafeHtml } from '../html.js';
import { page, percent } from '../layout.js';
import type { WebUser } from '../user.js';

const JOBS_SHOWN = 50;
/** Workers change job state on their own, so the table polls; a few seconds keeps it current without load. */
const REFRESH_SECONDS = 5;

export interface JobsView {
  /** Only jobs in this state; undefined = every state. */
  state: JobState | undefined;
  /** The caller's role may cancel jobs: only then are Cancel buttons shown. */
  canCancel: boolean;
  notice?: { kind: 'ok' | 'error'; text: string };
}

/** A state named in the query, or every state for anything else (the filter's "all" sends an empty value). */
export const stateFilter = (text: string | undefined): JobState | undefined => JOB_STATES.find((state) => state === text);

const time = (iso: string | undefined): string => (iso ? iso.slice(0, 19).replace('T', ' ') : '–');
const stateQuery = (state: JobState | undefined): string => `state=${state ?? ''}`;

function jobRow(job: JobInfo, { state, canCancel }: JobsView): SafeHtml {
  const cancellable = canCancel && !FINISHED_STATES.includes(job.state);
  return html`<tr data-job-id="${job.id}">
<td>${job.name}<br><code class="muted">${job.id}</code></td>
<td><span class="status ${job.state}">${job.state}</span></td>
<td><progress max="1" value="${job.progress}"></progress> ${percent(job.progress)}${job.progressMessage ? html` <span class="muted">${job.progressMessage}</span>` : ''}</td>
<td>${job.attempts}</td>
<td>${time(job.createdAt)}</td>
<td>${time(job.finishedAt)}</td>
<td class="job-error">${job.state === 'failed' ? job.error : ''}</td>
<td>${cancellable
    ? html`<button type="button" class="secondary cancel" hx-post="/jobs/${encodeURIComponent(job.id)}/cancel?${stateQuery(state)}" hx-target="#jobs" hx-swap="outerHTML" hx-confirm="Cancel job ${job.id}?">Cancel</button>`
    : ''}</td>
</tr>`;
}

/** The table and counts; it replaces itself every few seconds with the same filter. */
export async function jobsSection({ jobs }: ServerDeps, view: JobsView): Promise<SafeHtml> {
  const refresh = html`hx-get="/jobs/table?${stateQuery(view.state)}" hx-trigger="every ${REFRESH_SECONDS}s" hx-swap="outerHTML"`;
  let listed: [JobInfo[], Record<JobState, number>];
  try {
    listed = await Promise.all([jobs.list({ ...(view.state && { states: [view.state] }), limit: JOBS_SHOWN }), jobs.counts()]);
  } catch (error) {
    // An unreachable Redis: say so and keep polling, so the table comes back with the queue.
    if (!(error instanceof CatdogError)) throw error;
    return html`<section id="jobs" class="card" ${refresh}><p class="notice error" role="alert">${error.message}</p></section>`;
  }
  const [items, counts] = listed;
  return html`<section id="jobs" class="card" ${refresh}>
<p class="muted" id="job-counts">${JOB_STATES.map((state, i) => html`${i > 0 ? ' · ' : ''}<span data-state="${state}">${counts[state]}</span> ${state}`)}</p>
${view.notice ? html`<p class="notice ${view.notice.kind}" role="status">${view.notice.text}</p>` : ''}
${items.length === 0
    ? html`<p class="muted">No ${view.state ?? ''} job${view.state ? '' : ' yet'}.</p>`
    : html`<table id="job-table" tabindex="0">
<thead><tr><th>job</th><th>state</th><th>progress</th><th>attempts</th><th>created</th><th>finished</th><th>error</th><th>action</th></tr></thead>
<tbody>${items.map((job) => jobRow(job, view))}</tbody></table>`}
</section>`;
}

export async function jobsPage(deps: ServerDeps, view: JobsView, user: WebUser) {
  return page({
    title: 'Jobs',
    path: '/jobs',
    user,
    body: html`
<p class="muted">Background work (imports, training, sweep candidates, retraining) on the ${deps.jobs.kind === 'bullmq' ? 'Redis queue that catdog workers run' : "server's own in-process queue"}; the ${JOBS_SHOWN} newest are shown.</p>
<form class="filter card" hx-get="/jobs/table" hx-target="#jobs" hx-swap="outerHTML" hx-trigger="change">
  <label>State
    <select name="state">
      <option value="">all</option>
      ${JOB_STATES.map((state) => html`<option value="${state}"${state === view.state ? html` selected` : ''}>${state}</option>`)}
    </select>
  </label>
</form>
${await jobsSection(deps, view)}`,
  });
}
