"""A float32 copy of a GGUF model: the same weights, stored unquantized.

llama.cpp multiplies k-quant weights with activations rounded to 8 bits; with float32
weights it multiplies float32 by float32, as transformers does with the weights it
dequantizes from the same file. Scoring with both backends on this copy therefore
separates what the backends compute from how llama.cpp rounds activations
(``python -m benchmarks.speed --backend transformers --agreement itp
--llama-model PATH``; see ``docs/transformers.md``).

The copy holds every metadata field of the source (the file type set to all-float32)
and every tensor dequantized with the gguf library's own ``dequantize``, the routine
transformers uses when it loads a GGUF, so both backends read identical numbers.

    python -m benchmarks.float32_gguf OUT.gguf [--source IN.gguf]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["write_float32_copy"]

#: ``general.file_type`` for a file whose tensors are all float32 (llama.cpp's LLAMA_FTYPE_ALL_F32).
_ALL_F32 = 0


def write_float32_copy(source: Path, destination: Path) -> Path:
    """Write ``source`` with every tensor dequantized to float32 to ``destination``; return it.

    Raises:
        FileNotFoundError: if ``source`` does not exist.
        ValueError: if a metadata field has a type this copier does not know.
    """
    import numpy as np
    from gguf import GGUFReader, GGUFValueType, GGUFWriter
    from gguf.quants import dequantize

    reader = GGUFReader(str(source))
    architecture = reader.fields["general.architecture"].contents()
    writer = GGUFWriter(str(destination), architecture)
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue  # written by the writer itself
        value: Any = field.contents()
        if name == "general.file_type":
            value = _ALL_F32
        kind = field.types[0]
        sub_kind = field.types[-1] if kind == GGUFValueType.ARRAY else None
        writer.add_key_value(name, value, kind, sub_type=sub_kind)
    for tensor in reader.tensors:
        weights = dequantize(tensor.data, tensor.tensor_type).astype(np.float32, copy=False)
        writer.add_tensor(tensor.name, weights)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return destination


def main(argv: list[str] | None = None) -> int:
    from attrib.backends.llama import embedded_model_path

    parser = argparse.ArgumentParser(prog="python -m benchmarks.float32_gguf", description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="where to write the float32 GGUF")
    parser.add_argument("--source", type=Path, help="the GGUF to copy (default: the embedded Gemma 3 270M)")
    args = parser.parse_args(argv)
    source = args.source or embedded_model_path()
    write_float32_copy(source, args.output)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e9:.2f} GB) from {source}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
