"""`make shape`: the code's shape against the maintainers' goals, measured from the source.

It measures cohesion, not length: which module leans on which, and how SQL text is put
together. A line count cannot tell whether a module holds one concept, so none is taken.

- Imports: no cycle and no upward import between the first-party packages (PACKAGES,
  bottom first), nor between the modules of b2b_platform (MODULE_LAYERS, bottom first:
  lib < defs < definitions.py < cli*.py). Every import counts: a function's local import
  and one under TYPE_CHECKING too, since either ties the two modules together.
  Nor a cycle between the parts of lib/ and of defs/ (PART_PARENTS: each package and
  each top-level module below them is one part): two modules can avoid importing each
  other while their packages still lean on each other through others.
- No import of a private Dagster module (`dagster._...`, or any dagster package's `_`
  module): what the project needs of one goes through lib/dagster_internals.py, pinned by tests.
- SQL: identifiers reach SQL text only through the SQL helper module (SQL_HELPERS,
  b2b_platform/lib/warehouse/sql.py: `quote_identifier` and the fragments built with it). An
  f-string that reads as SQL may paste only
  (a) a call of one of that module's functions,
  (b) a module-level constant: an UPPER_CASE name assigned at module level or imported,
      or an item of one (`ORDER[name]`), or
  (c) a variable every assignment of which, in its scope, is such a call or such a
      constant (or `A if x else B` of two of them), or
  (d) SQL a caller passes in, declared so: a parameter annotated with the helper
      module's `SqlFragment` (`SqlFragment | None` too), an item of one annotated as a
      mapping or sequence of them (`Mapping[str, SqlFragment]`), or a field of one (`s.query`)
      when the parameter's annotation is a class of the same module whose field is
      annotated `SqlFragment`. The annotation is read from the AST of that module only,
      and the parameter must not be assigned anything else but (a) or (b).
  Anything else (an unannotated parameter, an attribute, a join, a nested f-string, a
  local function's result, `SqlFragment(...)` itself) is a finding, whatever its name:
  values are bound as parameters, and a fragment a caller passes in cannot be told from
  a value but by its declared type.

Prints every finding with its file:line and a summary; exits 1 when a goal is not met,
so `make lint` can gate on it. `--report` prints the same without failing.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGES = ("b2b_common", "source_db", "generators", "b2b_platform")
# bottom first: a package may import only those below it
# (b2b_platform's CLI runs the generators: `b2b generate`)
LAYERS = {"b2b_common": 0, "source_db": 1, "generators": 2, "b2b_platform": 3}
# the modules of b2b_platform, bottom first: a module may import only its own layer
# and those below (the package's empty __init__ belongs to none)
MODULE_LAYERS = (
    ("b2b_platform.lib", "b2b_platform.lib.*"),
    ("b2b_platform.defs", "b2b_platform.defs.*"),
    ("b2b_platform.definitions",),
    ("b2b_platform.cli", "b2b_platform.cli_*"),
)
# lib/'s and defs/'s parts: a subpackage, or a module at their top level
PART_PARENTS = ("b2b_platform.lib", "b2b_platform.defs")
SQL_HELPERS = "b2b_platform.lib.warehouse.sql"
SQL_FRAGMENT = "SqlFragment"  # the helper module's type of SQL text written in code
SQL = re.compile(
    r"^\s*(SELECT|WITH|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|COPY|ATTACH|DESCRIBE|SET|PRAGMA)\b"
    r"|\b(FROM|WHERE|JOIN|VALUES|GROUP BY|ORDER BY)\b",
)  # case-sensitive: the SQL here is written in capitals, prose ("from the backup") is not
CONSTANT = re.compile(r"_?[A-Z][A-Z0-9_]*")  # a private constant too
Scope = ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda


@dataclass
class Findings:
    sql_fstrings: list[str] = field(default_factory=list)  # every SQL f-string pasting
    sql_pastes: list[str] = field(default_factory=list)  # those pasting what the rule forbids
    private_imports: list[str] = field(default_factory=list)
    upward_imports: list[str] = field(default_factory=list)
    cycles: list[str] = field(default_factory=list)
    module_upward_imports: list[str] = field(default_factory=list)
    module_cycles: list[str] = field(default_factory=list)
    part_cycles: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Import:
    target: str  # the first-party module imported (the longest known module name)
    place: str  # file:line


def modules() -> Iterator[Path]:
    for package in PACKAGES:
        if (ROOT / package).is_dir():
            yield from sorted((ROOT / package).rglob("*.py"))


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def part_of(module: str) -> str | None:
    """The part of lib/ or defs/ a module belongs to (PART_PARENTS), or None."""
    for parent in PART_PARENTS:
        if module.startswith(f"{parent}."):
            return f"{parent}.{module[len(parent) + 1 :].split('.')[0]}"
    return None


def module_layer(module: str) -> int | None:
    for layer, patterns in enumerate(MODULE_LAYERS):
        if any(fnmatchcase(module, pattern) for pattern in patterns):
            return layer
    return None


# --------------------------------------------------------------------------------------
# Imports
# --------------------------------------------------------------------------------------
def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The module a `from ... import` names, a relative one resolved against `module`."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imported_names(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """Every dotted name an import statement may load: `from a import b` is a.b when b is
    a module, else a (the caller keeps the longest name that is a module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    source = _absolute(node, module, is_package)
    return [source, *(f"{source}.{alias.name}" for alias in node.names if alias.name != "*")]


def _known(name: str, known: set[str]) -> str | None:
    """The longest prefix of `name` that is a first-party module."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


def _is_private(name: str) -> bool:
    top, *rest = name.split(".")
    return top.startswith("dagster") and any(part.startswith("_") for part in rest)


# --------------------------------------------------------------------------------------
# SQL f-strings
# --------------------------------------------------------------------------------------
@dataclass
class _Bindings:
    """A scope's names: each with the values assigned to it (None for a binding that is
    not a plain `name = value`: a parameter, a loop or `with` target, an unpacking)."""

    values: dict[str, list[ast.expr | None]] = field(default_factory=dict)

    def bind(self, name: str, value: ast.expr | None) -> None:
        self.values.setdefault(name, []).append(value)


def _bind_target(bindings: _Bindings, target: ast.expr, value: ast.expr | None) -> None:
    if isinstance(target, ast.Name):
        bindings.bind(target.id, value)
    elif isinstance(target, ast.Tuple | ast.List):
        # `a, b = f(x), g(y)` pairs each name with its value; any other unpacking does not
        paired = isinstance(value, ast.Tuple | ast.List) and len(value.elts) == len(target.elts)
        for index, element in enumerate(target.elts):
            _bind_target(bindings, element, value.elts[index] if paired else None)
    elif isinstance(target, ast.Starred):
        _bind_target(bindings, target.value, None)


def _scope_bindings(scope: Scope) -> _Bindings:
    """The names `scope` binds, not descending into nested functions or classes."""
    bindings = _Bindings()
    if not isinstance(scope, ast.Module):
        arguments = scope.args
        for arg in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
            bindings.bind(arg.arg, None)
        for arg in (arguments.vararg, arguments.kwarg):
            if arg is not None:
                bindings.bind(arg.arg, None)
    body = [scope.body] if isinstance(scope, ast.Lambda) else scope.body
    pending: list[ast.AST] = list(body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bindings.bind(node.name, None)
            continue  # their bodies are scopes of their own
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, ast.Assign):
            for target in node.targets:
                _bind_target(bindings, target, node.value)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            _bind_target(bindings, node.target, node.value)
        elif isinstance(node, ast.AugAssign | ast.For | ast.AsyncFor | ast.comprehension):
            _bind_target(bindings, node.target, None)
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            _bind_target(bindings, node.optional_vars, None)
        elif isinstance(node, ast.NamedExpr):
            _bind_target(bindings, node.target, node.value)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bindings.bind(node.name, None)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                bindings.bind((alias.asname or alias.name).split(".")[0], None)
        pending.extend(ast.iter_child_nodes(node))
    return bindings


class _SqlRule:
    """What one module's SQL f-strings may paste (see the module's docstring)."""

    def __init__(self, tree: ast.Module, module: str, is_package: bool) -> None:
        self.helpers: set[str] = set()  # names bound to a function of the helper module
        self.helper_modules: set[str] = set()  # dotted names bound to the helper module
        self.constants: set[str] = set()  # UPPER_CASE names assigned or imported at top
        self.fragment_types: set[str] = set()  # names bound to the helper's SqlFragment
        # the module's classes: field name -> its annotation
        self.classes: dict[str, dict[str, ast.expr]] = {
            n.name: {
                f.target.id: f.annotation
                for f in n.body
                if isinstance(f, ast.AnnAssign) and isinstance(f.target, ast.Name)
            }
            for n in tree.body
            if isinstance(n, ast.ClassDef)
        }
        if module == SQL_HELPERS:
            self.helpers |= {
                n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            }
            self.fragment_types.add(SQL_FRAGMENT)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == SQL_HELPERS:
                        self.helper_modules.add(alias.asname or alias.name)
            elif isinstance(node, ast.ImportFrom):
                source = _absolute(node, module, is_package)
                for alias in node.names:
                    bound = alias.asname or alias.name
                    if source == SQL_HELPERS and alias.name == SQL_FRAGMENT:
                        self.fragment_types.add(bound)  # a cast, not a quoting helper
                    elif source == SQL_HELPERS:
                        self.helpers.add(bound)
                    elif f"{source}.{alias.name}" == SQL_HELPERS:
                        self.helper_modules.add(bound)
                    elif CONSTANT.fullmatch(bound):
                        self.constants.add(bound)
        top = _scope_bindings(tree)
        self.constants |= {name for name in top.values if CONSTANT.fullmatch(name)}
        self.bindings: dict[int, _Bindings] = {}

    def _bindings(self, scope: Scope) -> _Bindings:
        if id(scope) not in self.bindings:
            self.bindings[id(scope)] = _scope_bindings(scope)
        return self.bindings[id(scope)]

    def is_helper_call(self, node: ast.expr) -> bool:
        if not isinstance(node, ast.Call):
            return False
        function = node.func
        if isinstance(function, ast.Name):
            return function.id in self.helpers
        return (
            isinstance(function, ast.Attribute) and _dotted(function.value) in self.helper_modules
        )

    def allowed(self, node: ast.expr, scopes: list[Scope]) -> bool:
        """Whether an f-string in the innermost of `scopes` may paste `node`."""
        if self.is_helper_call(node):
            return True  # (a)
        if isinstance(node, ast.Subscript):  # an item of a constant is part of it
            if not isinstance(node.value, ast.Name):
                return False
            if self._constant(node.value, scopes):
                return True  # (b)
            annotation = self._parameter(node.value, scopes)  # (d), an item of a parameter
            return annotation is not None and self._holds_fragments(annotation)
        if isinstance(node, ast.Attribute):  # (d), a field of a parameter
            if not isinstance(node.value, ast.Name):
                return False
            annotation = self._parameter(node.value, scopes)
            fields = self.classes.get(annotation.id, {}) if isinstance(annotation, ast.Name) else {}
            return node.attr in fields and self._is_fragment(fields[node.attr])
        if not isinstance(node, ast.Name):
            return False
        for scope in reversed(scopes):  # the innermost scope binding the name decides
            values = self._bindings(scope).values.get(node.id)
            if values is None:
                continue
            if isinstance(scope, ast.Module) and node.id in self.constants:
                return True  # (b)
            annotation = self._annotation(scope, node.id)
            if annotation is not None:  # a parameter, bound first: (d), then (c)
                if not self._is_fragment(annotation):
                    return False
                values = values[1:]
            return all(v is not None and self._assignable(v, scopes) for v in values)  # (c)
        return node.id in self.constants  # (b), imported inside a function

    def _assignable(self, value: ast.expr, scopes: list[Scope]) -> bool:
        """(c): a helper's call, a module-level constant or an item of one (or a choice
        between two of them: `A if x else B`)."""
        if isinstance(value, ast.IfExp):
            return self._assignable(value.body, scopes) and self._assignable(value.orelse, scopes)
        if self.is_helper_call(value):
            return True
        if isinstance(value, ast.Subscript):
            value = value.value
        return isinstance(value, ast.Name) and self._constant(value, scopes)

    @staticmethod
    def _annotation(scope: Scope, name: str) -> ast.expr | None:
        """The annotation of `scope`'s parameter `name` (None if none or not one)."""
        if isinstance(scope, ast.Module | ast.Lambda):
            return None
        arguments = scope.args
        for arg in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
            if arg.arg == name:
                return arg.annotation
        return None

    def _parameter(self, node: ast.Name, scopes: list[Scope]) -> ast.expr | None:
        """The annotation of the parameter `node` names, if the innermost scope binding
        the name binds it only as that parameter."""
        for scope in reversed(scopes):
            values = self._bindings(scope).values.get(node.id)
            if values is None:
                continue
            annotation = self._annotation(scope, node.id)
            return annotation if annotation is not None and len(values) == 1 else None
        return None

    def _is_fragment(self, annotation: ast.expr) -> bool:
        """`SqlFragment`, `SqlFragment | None` or `None | SqlFragment`."""
        if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
            sides = (annotation.left, annotation.right)
            return any(self._is_fragment(s) for s in sides) and any(
                isinstance(s, ast.Constant) and s.value is None for s in sides
            )
        if isinstance(annotation, ast.Name):
            return annotation.id in self.fragment_types
        return (
            isinstance(annotation, ast.Attribute)
            and annotation.attr == SQL_FRAGMENT
            and _dotted(annotation.value) in self.helper_modules
        )

    def _holds_fragments(self, annotation: ast.expr) -> bool:
        """A mapping or sequence whose items are SqlFragments: `Mapping[str, SqlFragment]`,
        `dict[...]`, `Sequence[SqlFragment]`, `list[...]`, `tuple[SqlFragment, ...]`."""
        if not isinstance(annotation, ast.Subscript):
            return False
        container = _dotted(annotation.value) or ""
        arguments = annotation.slice
        items = arguments.elts if isinstance(arguments, ast.Tuple) else [arguments]
        if container.split(".")[-1] in ("Mapping", "dict") and len(items) == 2:
            return self._is_fragment(items[1])
        if container.split(".")[-1] in ("Sequence", "list") and len(items) == 1:
            return self._is_fragment(items[0])
        if container.split(".")[-1] == "tuple" and items:
            return self._is_fragment(items[0]) and all(
                self._is_fragment(i) or (isinstance(i, ast.Constant) and i.value is ...)
                for i in items[1:]
            )
        return False

    def _constant(self, node: ast.Name, scopes: list[Scope]) -> bool:
        """Whether `node` names a module-level constant, not shadowed in a function."""
        inner = [s for s in scopes if not isinstance(s, ast.Module)]
        shadowed = any(node.id in self._bindings(s).values for s in inner)
        return node.id in self.constants and not shadowed


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else None
    return None


def _sql_text(node: ast.JoinedStr) -> str:
    return "".join(
        v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
    )


def _check_sql(
    node: ast.AST, rule: _SqlRule, scopes: list[Scope], where: str, findings: Findings
) -> None:
    """Walk `node`, keeping the chain of enclosing scopes, judging each SQL f-string."""
    if isinstance(node, ast.JoinedStr):
        pasted = [v.value for v in node.values if isinstance(v, ast.FormattedValue)]
        if pasted and SQL.search(_sql_text(node)):
            findings.sql_fstrings.append(f"{where}:{node.lineno}")
            bad = [ast.unparse(p) for p in pasted if not rule.allowed(p, scopes)]
            if bad:
                findings.sql_pastes.append(f"{where}:{node.lineno} pastes {', '.join(bad)}")
    inner = (
        [*scopes, node]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        else scopes
    )
    for child in ast.iter_child_nodes(node):
        _check_sql(child, rule, inner, where, findings)


# --------------------------------------------------------------------------------------
# The measure
# --------------------------------------------------------------------------------------
def scan(
    path: Path, findings: Findings, known: set[str] | None = None, root: Path = ROOT
) -> list[Import]:
    """Judge one module's SQL f-strings and imports; return its first-party imports.
    `known` is the set of first-party modules (by default, the packages' first names)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    where = path.relative_to(root) if path.is_relative_to(root) else path
    module = module_name(path, root) if path.is_relative_to(root) else path.stem
    is_package = path.name == "__init__.py"
    known = known if known is not None else set(PACKAGES)
    _check_sql(tree, _SqlRule(tree, module, is_package), [tree], str(where), findings)
    imports: list[Import] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        names = imported_names(node, module, is_package)
        for name in names:
            if _is_private(name):
                findings.private_imports.append(f"{where}:{node.lineno} {name}")
        targets = {_known(name, known) for name in names} - {None, module}
        # `from a import b, c` with b and c modules: both; else a itself
        deepest = {t for t in targets if not any(o.startswith(f"{t}.") for o in targets)}
        imports.extend(Import(t, f"{where}:{node.lineno}") for t in sorted(deepest) if t)
    return imports


def _cycles(edges: dict[str, dict[str, str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, {})):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(components)


def measure(paths: list[Path] | None = None, root: Path = ROOT) -> Findings:
    findings = Findings()
    paths = list(modules()) if paths is None else paths
    known = {module_name(p, root) for p in paths}
    package_edges: dict[tuple[str, str], list[str]] = {}
    module_edges: dict[str, dict[str, str]] = {}  # source -> target -> first place
    for path in paths:
        source = module_name(path, root)
        for found in scan(path, findings, known, root):
            package, target_package = source.split(".")[0], found.target.split(".")[0]
            if target_package != package:
                package_edges.setdefault((package, target_package), []).append(found.place)
            module_edges.setdefault(source, {}).setdefault(found.target, found.place)
    for (source, target), places in sorted(package_edges.items()):
        if LAYERS.get(target, 0) > LAYERS.get(source, 0):
            findings.upward_imports.append(f"{source} -> {target} ({sorted(places)[0]})")
        if (target, source) in package_edges and source < target:
            findings.cycles.append(f"{source} <-> {target}")
    for source, targets in sorted(module_edges.items()):
        for target, place in sorted(targets.items()):
            low, high = module_layer(source), module_layer(target)
            if low is not None and high is not None and high > low:
                findings.module_upward_imports.append(f"{place} {source} -> {target}")
    # each tie as a finding shows it: "file:line module -> module"
    ties = {
        source: {target: f"{place} {source} -> {target}" for target, place in targets.items()}
        for source, targets in module_edges.items()
    }
    findings.module_cycles = _cycle_findings(ties)
    part_ties: dict[str, dict[str, str]] = {}
    for source, targets in sorted(ties.items()):
        for target, tie in sorted(targets.items()):
            low, high = part_of(source), part_of(target)
            if low and high and low != high:
                part_ties.setdefault(low, {}).setdefault(high, tie)
    findings.part_cycles = _cycle_findings(part_ties)
    return findings


def _cycle_findings(ties: dict[str, dict[str, str]]) -> list[str]:
    """Each cycle of the graph (source -> target -> the import that ties them): its
    members, then the imports that close it."""
    found = []
    for component in _cycles(ties):
        members = set(component)
        closing = [
            tie
            for source in component
            for target, tie in sorted(ties.get(source, {}).items())
            if target in members
        ]
        found.append(f"{', '.join(component)}: {'; '.join(closing)}")
    return found


def main(argv: list[str]) -> int:
    findings = measure()
    goals = {
        "SQL f-strings pasting what is neither quoted, a constant nor a helper fragment": (
            findings.sql_pastes
        ),
        "private Dagster imports": findings.private_imports,
        "upward imports between packages": findings.upward_imports,
        "import cycles between packages": findings.cycles,
        "upward imports between b2b_platform's layers": findings.module_upward_imports,
        "import cycles between modules": findings.module_cycles,
        "import cycles between the parts of lib/ and defs/": findings.part_cycles,
    }
    for title, items in goals.items():
        if items:
            print(f"{title} ({len(items)}):")
            for item in items:
                print(f"  {item}")
    print(f"SQL f-strings in all: {len(findings.sql_fstrings)}")
    print("summary: " + ", ".join(f"{title}: {len(items)}" for title, items in goals.items()))
    if "--report" in argv:
        return 0
    return 1 if any(goals.values()) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
