"""Produce the bundled dev LLM: ``genesis/models/dev-llm/``, a tiny chat model.

A word-level tokenizer over a small fixed corpus of questions and answers, and a
two-layer GPT-2 (32-wide, about 60k parameters, a few hundred kB) trained on it for a
few hundred steps on one CPU thread from a fixed seed, so that it answers the corpus'
questions with something like their answers. It is a model for tests and the dev chain,
not for use: what matters is that it is a real ``transformers`` causal LM with a chat
template, small enough to commit, and served byte-identically everywhere.

Its model id is keccak256 of the directory's canonical archive (DESIGN section 7,
:func:`sidecars.runtimes.directory_model_id`). The script rewrites the directory only
when the new files equal the old ones, and otherwise refuses unless ``--force`` is
given; ``--check`` rebuilds it in a temporary directory and compares.

Run it as ``python genesis/models/make_llm.py [--force | --check]``.
"""

import argparse
import filecmp
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

HERE = Path(__file__).resolve().parent
TARGET = HERE / "dev-llm"
sys.path.insert(0, str(HERE.parent.parent))

from sidecars.runtimes import directory_model_id  # noqa: E402

SEED = 19183
STEPS = 300
MAX_TOKENS = 64  # the model's limit on maxTokens, registered as its outputShape
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|> {{ message['content'] }} "
    "{% endfor %}{% if add_generation_prompt %}<|assistant|> {% endif %}"
)
SPECIAL = ["<pad>", "<unk>", "<eos>", "<|system|>", "<|user|>", "<|assistant|>", "<|tool|>"]
PAIRS = [
    ("what is the capital of france ?", "paris is the capital of france ."),
    ("what is two plus two ?", "two plus two is four ."),
    ("what color is the sky ?", "the sky is blue ."),
    ("who wrote hamlet ?", "shakespeare wrote hamlet ."),
    ("what is sibyl ?", "sibyl is an ai chain that verifies every answer ."),
    ("say hello .", "hello , world !"),
    ("what is the meaning of life ?", "the answer is forty two ."),
    ("how many legs does a cat have ?", "a cat has four legs ."),
    ("what do bees make ?", "bees make honey ."),
    ("is water wet ?", "yes , water is wet ."),
]
SYSTEM = "you are a helpful assistant ."


def conversation(question: str, answer: str | None, system: bool) -> str:
    text = f"<|system|> {SYSTEM} " if system else ""
    text += f"<|user|> {question} <|assistant|> "
    return text + (f"{answer} <eos>" if answer is not None else "")


def build(out: Path) -> None:
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    words = sorted({w for q, a in PAIRS for w in f"{q} {a} {SYSTEM}".split()})
    vocab = {token: i for i, token in enumerate(SPECIAL + words)}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="<unk>", pad_token="<pad>", eos_token="<eos>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    config = GPT2Config(
        vocab_size=len(vocab), n_positions=256, n_embd=32, n_layer=2, n_head=2,
        bos_token_id=vocab["<eos>"], eos_token_id=vocab["<eos>"], pad_token_id=vocab["<pad>"],
    )  # fmt: skip
    model = GPT2LMHeadModel(config)
    texts = [conversation(q, a, s) for q, a in PAIRS for s in (False, True)]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(STEPS):
        loss = model(**batch, labels=labels).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    model.generation_config.pad_token_id = vocab["<pad>"]
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    print(f"trained loss={loss.item():.4f}", file=sys.stderr)


def same(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir()), sorted(p.name for p in b.iterdir())
    if names[0] != names[1]:
        return False
    return all(filecmp.cmp(a / n, b / n, shallow=False) for n in names[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="replace a differing model")
    parser.add_argument("--check", action="store_true", help="rebuild and compare only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "dev-llm"
        build(fresh)
        model_id = "0x" + directory_model_id(fresh).hex()
        if TARGET.exists() and not same(fresh, TARGET) and (args.check or not args.force):
            print(f"{TARGET} differs from a rebuild (id {model_id})", file=sys.stderr)
            return 1
        if args.check:
            print(model_id)
            return 0
        if not TARGET.exists() or args.force:
            shutil.rmtree(TARGET, ignore_errors=True)
            shutil.copytree(fresh, TARGET)
    print(json.dumps({"id": model_id, "maxTokens": MAX_TOKENS}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
