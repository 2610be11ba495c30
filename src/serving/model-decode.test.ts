import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catdog } from '../../test/support/cli.js';
import { skipWithoutShared } from '../../test/support/shared.js';
import type { ModelRow } from '../db/index.js';
import { DECODE_ID } from '../images/index.js';
import { readModelCard, writeModelCard, type ModelCard } from '../registry/artifacts.js';
import { exportModel, type ExportedModelCard } from '../registry/export.js';
import { startTestServer, type TestServer } from '../../test/support/server.js';
import { escapeHtml } from '../web/html.js';
import { ModelServer } from './model-server.js';
import { trainSmallModel } from '../../test/support/trained-model.js';

/** The decode of a catdog built the other way: without the native JPEG decoder if this one has it, else with it. */
const OTHER_DECODE = DECODE_ID === 'squash-linear' ? 'squash-linear-jpeg-dct-scaled-enlarging' : 'squash-linear';

describe.skipIf(skipWithoutShared)('the image decode a model was trained on', () => {
  let t: TestServer;
  let model: ModelRow;

  /** The warning lines a new serving process logs while it loads the promoted model and checks for a newer one. */
  async function servingWarnings(): Promise<Record<string, unknown>[]> {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ base: undefined }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
    const models = new ModelServer({ db: t.app.db, blobs: t.app.blobs, backbones: t.app.backbones, logger, defaultBackbone: t.app.config.training.backbone });
    const classifier = await models.classifier();
    try {
      expect(classifier.modelId).toBe(model.id);
      expect(await models.refresh()).toBe(classifier);
    } finally {
      classifier.dispose();
    }
    return lines.filter((line) => line.level === pino.levels.values.warn);
  }

  const changeCard = async (change: (card: ModelCard) => ModelCard) =>
    writeModelCard(t.app.blobs, model.artifactPrefix, change((await readModelCard(t.app.blobs, model.artifactPrefix))!));

  const modelDecodeLine = async () => {
    const page = await (await t.fetchAs(`/models?model=${model.id}`, undefined, 'viewer')).text();
    return /<p class="muted" id="model-decode">.*<\/p>/.exec(page)?.[0];
  };

  /** The decode the REST API (one model, and the list), `catdog models show` and a TF.js export's card report. */
  async function reportedDecodes() {
    const api = async <T>(route: string) => (await (await t.fetchAs(route, undefined, 'viewer')).json()) as T;
    type ModelJson = { id: string; decodeId: string | null };
    const shown = await catdog(t.home, ['models', 'show', model.id]);
    expect(shown.code, shown.stderr).toBe(0);
    const exported = await exportModel(t.app, model.id, 'tfjs');
    if (exported.format !== 'tfjs') throw new Error('expected a TF.js export');
    return {
      api: (await api<ModelJson>(`/api/v1/models/${model.id}`)).decodeId,
      apiList: (await api<{ items: ModelJson[] }>('/api/v1/models')).items.find((item) => item.id === model.id)?.decodeId,
      cli: (JSON.parse(shown.stdout) as ModelJson).decodeId,
      export: (JSON.parse(new TextDecoder().decode(exported.files['catdog.json'])) as ExportedModelCard).decodeId,
    };
  }
  const everywhere = (decodeId: string | null) => ({ api: decodeId, apiList: decodeId, cli: decodeId, export: decodeId });

  beforeAll(async () => {
    t = await startTestServer();
    ({ model } = await trainSmallModel(t.app, 10));
  });
  afterAll(async () => {
    await t?.close();
  });

  it("is recorded on the card of a model catdog trains, shown on the Models page, and serving it on the same decode warns of nothing", async () => {
    expect((await readModelCard(t.app.blobs, model.artifactPrefix))?.decodeId).toBe(DECODE_ID);
    expect(await modelDecodeLine()).toBe(`<p class="muted" id="model-decode">Image decode: <code>${DECODE_ID}</code></p>`);
    expect(await servingWarnings()).toEqual([]);
    expect(await reportedDecodes()).toEqual(everywhere(DECODE_ID));
  });

  it('makes serving warn once, and the Models page say so, when the model was trained on another decode', async () => {
    // As the card of a model trained by a worker built the other way looks.
    await changeCard((card) => ({ ...card, decodeId: OTHER_DECODE }));

    const warnings = await servingWarnings();
    expect(warnings).toEqual([expect.objectContaining({ modelId: model.id, version: model.version, trainedOn: OTHER_DECODE, servingDecode: DECODE_ID })]);
    expect(warnings[0]!.msg).toContain(`trained on pixels from the image decode ${OTHER_DECODE}, but this process decodes photos with ${DECODE_ID}`);
    expect(await modelDecodeLine()).toContain(
      `Image decode: <code>${escapeHtml(OTHER_DECODE)}</code> <span class="notice error">this server decodes photos with <code>${escapeHtml(DECODE_ID)}</code>`,
    );
    expect(await reportedDecodes()).toEqual(everywhere(OTHER_DECODE));
  });

  it('is unknown for a model registered before catdog recorded it, which serves without a warning', async () => {
    await changeCard(({ decodeId: _decodeId, ...card }) => card);
    expect(await servingWarnings()).toEqual([]);
    expect(await modelDecodeLine()).toBe('<p class="muted" id="model-decode">Image decode: unknown: registered before catdog recorded it</p>');
    expect(await reportedDecodes()).toEqual(everywhere(null));
  });
});
