"""Attention, precision and hardware requirement selection (GPU paths tested by their selection logic)."""

import pytest
import torch

from align.config import ModelConfig
from align.errors import UserError
from align.models import Hardware, check_requirements, select_attn_implementation, select_precision

CPU = Hardware(cuda=False, flash_attn=False, cuda_bf16=False, cpu_bf16=False)
CPU_AMX = Hardware(cuda=False, flash_attn=False, cuda_bf16=False, cpu_bf16=True)
GPU = Hardware(cuda=True, flash_attn=True, cuda_bf16=True, cpu_bf16=False)
GPU_NO_FA = Hardware(cuda=True, flash_attn=False, cuda_bf16=True, cpu_bf16=False)


def test_auto_attention_picks_flash_only_with_cuda_and_flash_attn():
    assert select_attn_implementation("auto", GPU) == "flash_attention_2"
    assert select_attn_implementation("auto", GPU_NO_FA) == "sdpa"
    assert select_attn_implementation("auto", CPU) == "sdpa_blocks"
    assert select_attn_implementation("eager", CPU) == "eager"


def test_flash_attention_on_cpu_fails_with_one_line():
    with pytest.raises(UserError, match="needs a CUDA GPU; set it to auto or sdpa"):
        select_attn_implementation("flash_attention_2", CPU)
    with pytest.raises(UserError, match="flash-attn package"):
        select_attn_implementation("flash_attention_2", GPU_NO_FA)


def test_precision_auto_follows_hardware_and_can_be_forced():
    assert select_precision("auto", CPU) == torch.float32
    assert select_precision("auto", CPU_AMX) == torch.bfloat16
    assert select_precision("auto", GPU) == torch.bfloat16
    assert select_precision("bf16", CPU) == torch.bfloat16
    assert select_precision("fp32", GPU) == torch.float32


def test_gpu_only_recipe_and_qlora_fail_on_cpu():
    with pytest.raises(UserError, match="this recipe needs a CUDA GPU"):
        check_requirements(ModelConfig(requires="cuda"), CPU)
    with pytest.raises(UserError, match=r"4bit \(QLoRA\) needs a CUDA GPU"):
        check_requirements(ModelConfig(quantization="4bit"), CPU)
    check_requirements(ModelConfig(), CPU)  # the default runs anywhere


def test_models_answer_in_the_recipes_precision_merged_in_fp32_first(tiny_model_dir, tmp_path):
    """Inference runs in model.precision's dtype; an adapter is merged into fp32 weights before the cast, so the
    bf16 weights are the rounded fp32 merge (merging into already-rounded weights would round twice)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from align.stage import FINAL, inference_dtype, load_for_inference

    base = lambda: AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)  # noqa: E731
    fp32, _ = load_for_inference(None, ModelConfig(name=str(tiny_model_dir), precision="fp32"))
    assert {p.dtype for p in fp32.parameters()} == {torch.float32} and not fp32.training
    bf16, _ = load_for_inference(None, ModelConfig(name=str(tiny_model_dir), precision="bf16"), CPU)
    assert {p.dtype for p in bf16.parameters()} == {torch.bfloat16} and not bf16.training
    for hw in (CPU, CPU_AMX):  # auto answers in fp32 on CPU, even where training autocasts to bf16
        assert load_for_inference(None, ModelConfig(name=str(tiny_model_dir)), hw)[0].dtype == torch.float32
    assert inference_dtype(ModelConfig(), GPU) == torch.bfloat16

    peft = get_peft_model(base(), LoraConfig(r=4, target_modules=["q_proj", "down_proj"], init_lora_weights=False))
    peft.save_pretrained(tmp_path / "stage" / FINAL)
    merged = peft.merge_and_unload().to(torch.bfloat16).state_dict()
    loaded, _ = load_for_inference(tmp_path / "stage", ModelConfig(name=str(tiny_model_dir), precision="bf16"), CPU)
    for name, value in loaded.state_dict().items():
        torch.testing.assert_close(value, merged[name], atol=0, rtol=0, msg=name)
