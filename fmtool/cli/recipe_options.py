"""`train` options generated from the recipe classes, so each recipe value is written once.

Every field a recipe class offers (`fmtool.engine.recipe.recipe_fields`) becomes an option whose
default is None (keep the recipe's value), whose range and panel come from the field, and whose
help ends with the values of the recipes a plain `train` picks (paper on a CUDA GPU, cpu
elsewhere), read from the recipe objects themselves.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from typing import Annotated, Any, Callable, Optional, Sequence

import typer

from fmtool.cli.options import FLAG_NAMES, choice, number_option
from fmtool.engine.recipe import Recipe, bounds_of, recipe_fields


def shown(value: Any) -> str:
    """A recipe value as people write it: 5e-4, not 0.0005; on/off for switches."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float) and value and abs(value) < 1e-2:
        mantissa, exponent = f"{value:e}".split("e")
        return f"{float(mantissa):g}e{int(exponent)}"
    if isinstance(value, float):
        return f"{value:.1f}" if value.is_integer() else f"{value:g}"
    return str(value)


def defaults_text(field: str, defaults: Sequence[Recipe]) -> str:
    """`paper: 5e-4; cpu: 4e-3`, or `paper, cpu: 64` where the recipes agree."""
    values = [shown(getattr(recipe, field)) for recipe in defaults]
    if len(set(values)) == 1:
        return f"{', '.join(r.name for r in defaults)}: {values[0]}"
    return "; ".join(f"{recipe.name}: {value}" for recipe, value in zip(defaults, values))


def _option(field: dataclasses.Field, kind: type, defaults: Sequence[Recipe]) -> inspect.Parameter:
    meta = field.metadata
    name = FLAG_NAMES.get(field.name, field.name).replace("_", "-")
    help_text = f"{meta['help'].rstrip('.')} ({defaults_text(field.name, defaults)})."
    settings: dict[str, Any] = {"help": help_text, "rich_help_panel": meta["panel"]}
    if kind is bool:
        option = typer.Option(f"--{name}/--no-{name}", show_default=False, **settings)
    elif meta["choices"] is not None:
        option = choice(meta["choices"], field.name, help_text, f"--{name}",
                        rich_help_panel=meta["panel"])
        kind = meta["choices"]
    else:
        option = number_option(bounds_of(field, kind), field.name, help_text, f"--{name}",
                               rich_help_panel=meta["panel"])
    return inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[Optional[kind], option])


def recipe_options(recipe_class: type[Recipe],
                   defaults: Sequence[Recipe]) -> Callable[[Callable], Callable]:
    """Adds an option per field of `recipe_class` to a `train` command, after its first parameter
    (`--recipe`), its help naming each of `defaults`' values. The command receives them as one
    dict, `overrides` (None = keep the recipe's)."""
    types = typing.get_type_hints(recipe_class)
    generated = [_option(f, types[f.name], defaults) for f in recipe_fields(recipe_class)]
    names = [p.name for p in generated]

    def decorate(command: Callable) -> Callable:
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
               for p in inspect.signature(command, eval_str=True).parameters.values()
               if p.name != "overrides"]

        @functools.wraps(command)
        def with_overrides(**kwargs: Any) -> Any:
            overrides = {name: kwargs.pop(name) for name in names}
            return command(overrides=overrides, **kwargs)

        parameters = [own[0], *generated, *own[1:]]
        with_overrides.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        return with_overrides

    return decorate
