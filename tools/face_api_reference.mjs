// Reference descriptors from @vladmandic/face-api itself (TF.js, CPU backend) for the port test.
// Usage: node tools/face_api_reference.mjs PACKAGE_DIR INPUTS.json OUTPUT.json
// INPUTS.json: [{"w": 150, "h": 150, "data": [r, g, b, r, g, b, ...]}, ...] (0-255, row-major HWC).
// Run through tools/face_api_reference.py, which writes the inputs and the test fixture.
import fs from 'fs';
import util from 'util';

const [pkg, inPath, outPath] = process.argv.slice(2);
// The ESM bundle picks its platform from globals at import time; hide Node's and set one below.
const savedProcess = globalThis.process;
globalThis.process = undefined;
const faceapi = await import(`${pkg}/dist/face-api.esm.js`);
globalThis.process = savedProcess;
const tf = faceapi.tf;
tf.env().setPlatform('custom', {
  fetch: (u, o) => fetch(u, o),
  now: () => performance.now(),
  encode: (t) => new TextEncoder().encode(t),
  decode: (b, e) => new TextDecoder(e).decode(b),
  isTypedArray: (a) => util.types.isFloat32Array(a) || util.types.isInt32Array(a)
    || util.types.isUint8Array(a) || util.types.isUint8ClampedArray(a),
});
await tf.setBackend('cpu');
await tf.ready();
class Dummy {}
faceapi.env.setEnv({
  Canvas: Dummy, CanvasRenderingContext2D: Dummy, Image: Dummy, ImageData: Dummy, Video: Dummy,
  createCanvasElement: () => ({}), createImageElement: () => ({}), fetch: (u) => fetch(u), readFile: () => null,
});
const dir = `${pkg}/model/`;
const manifest = JSON.parse(fs.readFileSync(`${dir}face_recognition_model-weights_manifest.json`));
const buf = fs.readFileSync(`${dir}face_recognition_model.bin`);
const weights = tf.io.decodeWeights(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength),
  manifest[0].weights);
const net = faceapi.nets.faceRecognitionNet;
net.loadFromWeightMap(weights);
const out = [];
for (const img of JSON.parse(fs.readFileSync(inPath))) {
  const t = tf.tensor3d(img.data, [img.h, img.w, 3], 'float32');
  out.push(Array.from(await net.computeFaceDescriptor(t)));
  t.dispose();
}
fs.writeFileSync(outPath, JSON.stringify(out));
console.log(`face-api ${faceapi.version} (tfjs ${tf.version_core}, backend ${tf.getBackend()}): ${out.length} descriptors`);
