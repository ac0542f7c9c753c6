#!/usr/bin/env bash
# find-python.sh X.Y: print the path of a Python X.Y interpreter (PATH or pyenv).
v=$1
for c in "python$v" "$HOME/.pyenv/versions/$v"*/bin/python3 /root/.pyenv/versions/"$v"*/bin/python3 \
         /usr/local/bin/python"$v" /usr/bin/python"$v"; do
    p=$(command -v "$c" 2>/dev/null) || continue
    if "$p" -c "import sys; assert '%d.%d' % sys.version_info[:2] == '$v'" 2>/dev/null; then
        echo "$p"; exit 0
    fi
done
exit 1
