import { afterEach, describe, expect, it, vi } from 'vitest';
import type { PromotionRow } from '../db/index.js';
import { printTable } from './app-runner.js';

describe('printTable', () => {
  afterEach(() => vi.restoreAllMocks());

  const printed = (print: () => void): string => {
    let text = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      text += String(chunk);
      return true;
    });
    print();
    return text;
  };

  it('prints rows of a stored type as aligned columns named by the first row, empty cells for null', () => {
    const rows: PromotionRow[] = [
      { id: 2, modelId: 'mdl_b', previousModelId: 'mdl_a', reason: 'beats it', actor: 'training', promotedAt: '2026-12-07T06:00:00.000Z' },
      { id: 1, modelId: 'mdl_a', previousModelId: null, reason: 'first model', actor: 'cli', promotedAt: '2026-12-07T05:00:00.000Z' },
    ];
    expect(printed(() => printTable(rows)).split('\n')).toEqual([
      'id  modelId  previousModelId  reason       actor     promotedAt',
      '--  -------  ---------------  -----------  --------  ------------------------',
      '2   mdl_b    mdl_a            beats it     training  2026-12-07T06:00:00.000Z',
      '1   mdl_a                     first model  cli       2026-12-07T05:00:00.000Z',
      '',
    ]);
    expect(printed(() => printTable([]))).toBe('(none)\n');
  });
});
