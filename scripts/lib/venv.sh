# Sourced by scripts/test and scripts/load: the python venv (.venv, git-ignored) with the pinned
# real AWS clients (botocore, boto3, the AWS CLI) and moto's server. A stamp of the requirements
# file lets repeated runs skip pip. Run from the repository root; exports ROLECHAIN_PYTHON.
ensure_venv() {
  local venv=.venv
  local stamp="$venv/.requirements.sha256"
  local want
  want=$(sha256sum scripts/requirements-test.txt | cut -d' ' -f1)
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
    echo "$want" > "$stamp"
  fi
  export ROLECHAIN_PYTHON="$PWD/$venv/bin/python"
}
