#!/usr/bin/env python3
"""Turns the ```cpp blocks of docs/guide.md into one C++ program (tests/CMakeLists.txt:
test_guide). Each block is the body of a function run in the order of the guide; a ```text
block right after it is the output it must print, exactly. Compile errors point at the
guide's lines (#line).
  guide_snippets.py docs/guide.md out.cpp"""
import re
import sys

md_path, out_path = sys.argv[1], sys.argv[2]
md = open(md_path, encoding="utf-8").read()
pattern = re.compile(r"```cpp\n(.*?)```(?:[ \t]*\n[ \t]*\n?```text\n(.*?)```)?", re.S)
parts = ["// Generated from docs/guide.md by tests/guide_snippets.py: do not edit.",
         "#include <theta/theta.hpp>",
         "#include <cmath>", "#include <cstdio>", "#include <cstdlib>", "#include <filesystem>", "#include <iomanip>", "#include <iostream>",
         "#include <sstream>", "#include <string>", "#include <vector>", "",
         "namespace guide {"]
table = []
for n, m in enumerate(pattern.finditer(md), 1):
    line = md.count("\n", 0, m.start(1)) + 1
    heading = [h for h in re.findall(r"^## (.*)$", md[: m.start()], re.M)][-1:] or ["(top)"]
    parts.append(f"void snippet_{n}() {{")
    parts.append(f'#line {line} "{md_path}"')
    parts.append(m.group(1) + "}")
    generated_line = sum(part.count("\n") + 1 for part in parts) + 1
    parts.append(f'#line {generated_line} "guide_snippets.cpp"')
    expected = m.group(2)
    literal = "nullptr" if expected is None else "R\"guide_out(" + expected + ")guide_out\""
    where = f"{heading[0]} (line {line})".replace('"', "'")
    table.append(f'  {{"{where}", &guide::snippet_{n}, {literal}}},')
parts.append("}  // namespace guide")
parts.append("""
struct Snippet {
  const char* where;
  void (*run)();
  const char* expected;  // nullptr: not compared
};
const Snippet kSnippets[] = {""")
parts.extend(table)
parts.append("""};

int main() {
  int failed = 0, n = 0;
  for (const Snippet& s : kSnippets) {
    ++n;
    std::ostringstream out;
    std::streambuf* saved = std::cout.rdbuf(out.rdbuf());
    const std::ios::fmtflags flags = std::cout.flags();
    const std::streamsize precision = std::cout.precision();
    std::string error;
    try {
      s.run();
    } catch (const std::exception& e) {
      error = e.what();
    }
    std::cout.rdbuf(saved);
    std::cout.flags(flags);  // a snippet's formatting stays with it
    std::cout.precision(precision);
    const bool ok = error.empty() && (!s.expected || out.str() == s.expected);
    std::cout << (ok ? "ok      " : "FAILED  ") << s.where << "\\n";
    if (std::getenv("THETA_GUIDE_SHOW")) std::cout << out.str();  // to write the guide's output blocks
    if (!error.empty()) std::cout << "  threw: " << error << "\\n";
    if (error.empty() && !ok)
      std::cout << "  printed:\\n" << out.str() << "  the guide says:\\n" << s.expected;
    failed += !ok;
  }
  std::cout << n - failed << " of " << n << " guide snippets ran as the guide says\\n";
  return failed ? 1 : 0;
}""")
open(out_path, "w", encoding="utf-8").write("\n".join(parts) + "\n")
