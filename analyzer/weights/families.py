"""The supported model families: every per-family fact in one declarative entry.

Everything that differs between families is written here and read by the stages that need
it: `architecture` (which tensor is which role, config keys, dense shapes), `lineage` (a
base model's parameter count from its config), `sparsity` (which K/V groups a norm keeps
alive), `runtime.packing` (fused matrices split, norm weights narrowed with their rows) and
`flops` (the sizes of the FLOP model). Adding a family is one `Family` entry in `FAMILIES`
and its test (tests/decoders.py builds every decoder family listed here); see
docs/architecture.md, "How to add a model family".

Roles are those of `analyzer.records.LINEAR_ROLES`: q, k, v, o, ffn_in, ffn_out (encoders),
plus ffn_gate for gated MLPs (gate_proj; up_proj is ffn_in, down_proj ffn_out) and the
fused qkv / ffn_gate_up matrices of Phi-3.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from analyzer.records import LINEAR_ROLES

__all__ = [
    "ALWAYS",
    "FAMILIES",
    "Family",
    "WidthNorm",
    "find_family",
    "is_decoder",
]

ALWAYS = ""  # a `Family.biases` key: biases every checkpoint of the family has


@dataclass(frozen=True)
class WidthNorm:
    """A norm over the whole projected width of a role, all heads at once (OLMo2's q_norm
    over num_heads x head_dim, k_norm over num_kv_heads x head_dim).

    Packing narrows its weight with the rows it normalises; and since every row enters
    the mean it divides by, a K/V group is removed only once these rows of it are zero too
    (its query heads dead is not enough), then the packed model's norm still divides by
    the dense width."""

    module: str  # path inside a layer, e.g. "self_attn.q_norm"
    role: str  # the projection whose output it normalises: "q" or "k"


@dataclass(frozen=True)
class Family:
    """One family of checkpoints, recognised by config.json's `model_type`."""

    name: str
    model_types: tuple[str, ...]
    layer_pattern: re.Pattern[str]  # group 1: layer index, group 2: the rest of the name
    roles: dict[str, str]  # module path inside a layer -> role
    keys: dict[str, str]  # geometry field -> config.json key (also the FLOP model's sizes)
    kind: str = "encoder"  # "encoder" or "decoder" (a causal LM)
    # a fused role -> the roles whose rows it stacks, in order (Phi-3's qkv_proj: q, k, v)
    fused: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # a config.json flag (ALWAYS: none) -> the roles it gives biases (decoders: no flag
    # listed, no biases)
    biases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    tied_by_default: bool = False  # transformers' default tie_word_embeddings
    norms_per_layer: int = 2  # hidden-wide norm weights per layer (decoders)
    head_norms: tuple[str, ...] = ()  # roles normalised per head (Qwen3: head_dim weights)
    width_norms: tuple[WidthNorm, ...] = ()  # roles normalised over their whole width
    # config keys whose transformers default is a fixed number, not derived from the other
    # sizes (Mistral's 8 KV heads, Gemma's head_dim 256): a base config must state them
    stated: tuple[str, ...] = ()
    positions_after_padding: bool = False  # RoBERTa: position ids start at padding_idx + 1

    @property
    def layer_roles(self) -> tuple[str, ...]:
        """The linear roles every layer of this family stores, in LINEAR_ROLES order."""
        return tuple(r for r in LINEAR_ROLES if r in self.roles.values())

    @property
    def parts(self) -> tuple[str, ...]:
        """The unfused roles of a layer (a fused matrix stands for its parts)."""
        return tuple(p for r in self.layer_roles for p in self.fused.get(r, (r,)))

    @property
    def gated(self) -> bool:
        """A gated MLP (gate, up and down matrices)?"""
        return "ffn_gate" in self.parts

    def width_norm(self, module: str) -> WidthNorm | None:
        """The whole-width norm at `module` (a path inside a layer), if it is one."""
        return next((n for n in self.width_norms if n.module == module), None)


_BERT_ROLES = {
    "attention.self.query": "q",
    "attention.self.key": "k",
    "attention.self.value": "v",
    "attention.output.dense": "o",
    "intermediate.dense": "ffn_in",
    "output.dense": "ffn_out",
}
_BERT_KEYS = {
    "num_layers": "num_hidden_layers",
    "num_heads": "num_attention_heads",
    "hidden_size": "hidden_size",
    "intermediate_size": "intermediate_size",
}
_BERT_LAYERS = re.compile(r"^(?:.*\.)?encoder\.layer\.(\d+)\.(.+)$")

# decoder LLMs: model.layers.N.self_attn.* and model.layers.N.mlp.*
_DECODER_LAYERS = re.compile(r"^(?:.*\.)?layers\.(\d+)\.(.+)$")
_DECODER_ROLES = {
    "self_attn.q_proj": "q",
    "self_attn.k_proj": "k",
    "self_attn.v_proj": "v",
    "self_attn.o_proj": "o",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_in",
    "mlp.down_proj": "ffn_out",
}
_DECODER_KEYS = {
    **_BERT_KEYS,
    "num_kv_heads": "num_key_value_heads",  # optional: defaults to num_attention_heads
    "head_dim": "head_dim",  # optional: defaults to hidden_size / num_attention_heads
}
_ATTENTION_BIAS: dict[str, tuple[str, ...]] = {"attention_bias": ("q", "k", "v", "o")}


def _decoder(
    name: str,
    *,
    roles: dict[str, str] = _DECODER_ROLES,
    fused: dict[str, tuple[str, ...]] | None = None,
    biases: dict[str, tuple[str, ...]] | None = None,
    tied_by_default: bool = False,
    norms_per_layer: int = 2,
    head_norms: tuple[str, ...] = (),
    width_norms: tuple[WidthNorm, ...] = (),
    stated: tuple[str, ...] = (),
) -> Family:
    """A decoder family named after its model_type, Llama's tensor names unless given."""
    return Family(
        name,
        (name,),
        _DECODER_LAYERS,
        roles,
        _DECODER_KEYS,
        "decoder",
        fused=fused or {},
        biases=biases or {},
        tied_by_default=tied_by_default,
        norms_per_layer=norms_per_layer,
        head_norms=head_norms,
        width_norms=width_norms,
        stated=stated,
    )


FAMILIES = (
    Family("bert", ("bert",), _BERT_LAYERS, _BERT_ROLES, _BERT_KEYS),
    Family(
        "roberta",
        ("roberta", "xlm-roberta", "camembert"),
        _BERT_LAYERS,
        _BERT_ROLES,
        _BERT_KEYS,
        positions_after_padding=True,
    ),
    Family(
        "distilbert",
        ("distilbert",),
        re.compile(r"^(?:.*\.)?transformer\.layer\.(\d+)\.(.+)$"),
        {
            "attention.q_lin": "q",
            "attention.k_lin": "k",
            "attention.v_lin": "v",
            "attention.out_lin": "o",
            "ffn.lin1": "ffn_in",
            "ffn.lin2": "ffn_out",
        },
        {
            "num_layers": "n_layers",
            "num_heads": "n_heads",
            "hidden_size": "dim",
            "intermediate_size": "hidden_dim",
        },
    ),
    _decoder(
        "llama",
        biases={**_ATTENTION_BIAS, "mlp_bias": ("ffn_gate", "ffn_in", "ffn_out")},
    ),
    _decoder("mistral", stated=("num_key_value_heads",)),
    _decoder("qwen2", biases={ALWAYS: ("q", "k", "v")}, stated=("num_key_value_heads",)),
    _decoder(
        "qwen3",
        biases=_ATTENTION_BIAS,
        head_norms=("q", "k"),
        stated=("num_key_value_heads", "head_dim"),
    ),
    _decoder(
        "gemma",
        biases=_ATTENTION_BIAS,
        tied_by_default=True,
        stated=("num_key_value_heads", "head_dim"),
    ),
    _decoder(
        "gemma2",
        biases=_ATTENTION_BIAS,
        tied_by_default=True,
        norms_per_layer=4,
        stated=("num_key_value_heads", "head_dim"),
    ),
    _decoder(
        "phi3",  # Q, K, V fused (rows q, then k, then v); gate and up fused (gate rows first)
        roles={
            "self_attn.qkv_proj": "qkv",
            "self_attn.o_proj": "o",
            "mlp.gate_up_proj": "ffn_gate_up",
            "mlp.down_proj": "ffn_out",
        },
        fused={"qkv": ("q", "k", "v"), "ffn_gate_up": ("ffn_gate", "ffn_in")},
    ),
    _decoder(
        "olmo2",  # norms after attention and after the MLP; q and k normed over all heads
        biases=_ATTENTION_BIAS,
        width_norms=(WidthNorm("self_attn.q_norm", "q"), WidthNorm("self_attn.k_norm", "k")),
    ),
)


def find_family(model_type: object) -> Family | None:
    """The supported family of a config.json `model_type` (None: generic)."""
    return next((f for f in FAMILIES if model_type in f.model_types), None)


def is_decoder(model_type: object) -> bool:
    """Is `model_type` one of the supported decoder LLM families?"""
    family = find_family(model_type)
    return family is not None and family.kind == "decoder"
