#!/bin/sh
# make demo: record the bundled demo program and show what each tool makes
# of it. Grows with every tool.
set -eu
O=${1:-build}
B=$O/bin
mkdir -p "$O/demo"
cd "$O/demo"
rm -f demo.*.memscope
echo "== ms-record ../tests/programs/demo"
"../bin/ms-record" -o demo.memscope ../tests/programs/demo
if [ -x ../bin/ms-stats ]; then
	echo "== ms-stats --text demo.memscope"
	../bin/ms-stats --text demo.memscope
	../bin/ms-stats demo.memscope > demo.json
	echo "(JSON in $O/demo/demo.json)"
fi
if [ -x ../bin/ms-svg ]; then
	../bin/ms-svg -o demo.svg demo.memscope
	../bin/ms-svg --chart all -o demo-all.png demo.memscope
	echo "== ms-svg: $O/demo/demo.svg $O/demo/demo-all.png"
fi
if [ -x ../bin/ms-html ]; then
	../bin/ms-html -o demo.html demo.memscope
	echo "== ms-html: $O/demo/demo.html"
fi
