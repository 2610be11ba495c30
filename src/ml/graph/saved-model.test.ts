import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { DataType, encodeSavedModel } from './saved-model.js';

// tfjs-node's generated protobuf classes for the SavedModel messages: an independent decoder for what we encode.
const require = createRequire(import.meta.url);
const messages = require('@tensorflow/tfjs-node/dist/proto/api_pb.js') as {
  SavedModel: { deserializeBinary(bytes: Uint8Array): { toObject(): SavedModelObject } };
};

interface SavedModelObject {
  savedModelSchemaVersion: number;
  metaGraphsList: {
    metaInfoDef: { tagsList: string[] };
    graphDef: { nodeList: { name: string; op: string; inputList: string[]; attrMap: [string, Record<string, unknown>][] }[]; versions: { producer: number } };
    signatureDefMap: [string, { inputsMap: [string, TensorInfoObject][]; outputsMap: [string, TensorInfoObject][]; methodName: string }][];
  }[];
}

interface TensorInfoObject {
  name: string;
  dtype: number;
  tensorShape: { dimList: { size: number }[] };
}

describe('encodeSavedModel', () => {
  it('writes a SavedModel that protobuf decodes back to the same nodes, attributes, constants and signatures', () => {
    const kernel = Float32Array.from([0.5, -1.25, 3, 1e-7]);
    const bytes = encodeSavedModel({
      tags: ['serve'],
      nodes: [
        { name: 'pixels', op: 'Placeholder', inputs: [], attrs: { dtype: { type: DataType.float32 }, shape: { shape: [-1, 2, 2, 1] } } },
        { name: 'conv/kernel', op: 'Const', inputs: [], attrs: { dtype: { type: DataType.float32 }, value: { tensor: { dtype: DataType.float32, shape: [2, 2, 1, 1], values: kernel } } } },
        {
          name: 'conv',
          op: 'Conv2D',
          inputs: ['pixels', 'conv/kernel'],
          attrs: { T: { type: DataType.float32 }, strides: { ints: [1, 300, 300, 1] }, padding: { string: 'VALID' }, keep: { bool: true }, epsilon: { float: 0.001 }, N: { int: 2 } },
        },
      ],
      signatures: {
        features: {
          inputs: { images: { tensor: 'pixels:0', dtype: DataType.float32, shape: [-1, 2, 2, 1] } },
          outputs: { features: { tensor: 'conv:0', dtype: DataType.float32, shape: [-1, 1, 1, 1] } },
        },
      },
    });

    const decoded = messages.SavedModel.deserializeBinary(bytes).toObject();
    expect(decoded.savedModelSchemaVersion).toBe(1);
    const [metaGraph] = decoded.metaGraphsList;
    expect(metaGraph!.metaInfoDef.tagsList).toEqual(['serve']);
    expect(metaGraph!.graphDef.versions.producer).toBeGreaterThan(0);
    const nodes = metaGraph!.graphDef.nodeList;
    expect(nodes.map(({ name, op, inputList }) => ({ name, op, inputList }))).toEqual([
      { name: 'pixels', op: 'Placeholder', inputList: [] },
      { name: 'conv/kernel', op: 'Const', inputList: [] },
      { name: 'conv', op: 'Conv2D', inputList: ['pixels', 'conv/kernel'] },
    ]);
    const attrs = (index: number) => Object.fromEntries(nodes[index]!.attrMap);
    expect(attrs(0).shape).toMatchObject({ shape: { dimList: [{ size: -1 }, { size: 2 }, { size: 2 }, { size: 1 }] } });
    const constant = attrs(1).value as { tensor: { dtype: number; tensorShape: { dimList: { size: number }[] }; tensorContent: string } };
    expect(constant.tensor.dtype).toBe(DataType.float32);
    expect(constant.tensor.tensorShape.dimList.map((dim) => dim.size)).toEqual([2, 2, 1, 1]);
    const content = Buffer.from(constant.tensor.tensorContent, 'base64');
    expect(new Float32Array(content.buffer.slice(content.byteOffset, content.byteOffset + content.byteLength))).toEqual(kernel);
    expect(attrs(2)).toMatchObject({
      T: { type: DataType.float32 },
      strides: { list: { iList: [1, 300, 300, 1] } },
      padding: { s: Buffer.from('VALID').toString('base64') },
      keep: { b: true },
      N: { i: 2 },
    });
    expect((attrs(2).epsilon as { f: number }).f).toBeCloseTo(0.001, 9);

    expect(metaGraph!.signatureDefMap.map(([name]) => name)).toEqual(['features']);
    const signature = metaGraph!.signatureDefMap[0]![1];
    expect(signature.methodName).toBe('tensorflow/serving/predict');
    expect(signature.inputsMap).toEqual([['images', { name: 'pixels:0', dtype: DataType.float32, tensorShape: { dimList: [-1, 2, 2, 1].map((size) => ({ size, name: '' })), unknownRank: false } }]]);
    expect(signature.outputsMap[0]![1].name).toBe('conv:0');
  });
});
