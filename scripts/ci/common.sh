# shellcheck shell=bash
# Shared by the scripts in scripts/ci/ (sourced, not run): where gonogo's
# source is, the cache key of a build of it, and how a step hands values to
# the next (GitHub step outputs, GitLab dotenv variables).

# gonogo's own checkout: the Action's directory on GitHub, the clone the
# GitLab component makes, or this repository in the tests.
gonogo_src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# The build profile: release, unless GONOGO_INSTALL_DEBUG=1 (the tests use
# it to reuse their warm debug build).
gonogo_profile() {
  if [ "${GONOGO_INSTALL_DEBUG:-}" = 1 ]; then echo debug; else echo release; fi
}

# Where gonogo is installed: GONOGO_INSTALL_ROOT, else a directory in the
# home that the CI cache can restore to the same path on every run.
gonogo_install_root() {
  echo "${GONOGO_INSTALL_ROOT:-$HOME/.cache/gonogo-ci/install}"
}

# The cache key of a build: gonogo's version, the operating system release
# and architecture (a binary links against the system's libc), the profile,
# and a hash of every source file, so an unreleased ref rebuilds whenever
# its code changes.
gonogo_cache_key() {
  local version os hash
  version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$gonogo_src/Cargo.toml" | head -n1)"
  os="$( (. /etc/os-release 2>/dev/null && echo "${ID:-linux}${VERSION_ID:-}") || uname -s)"
  hash="$(cd "$gonogo_src" && find Cargo.toml Cargo.lock src -type f -print0 \
    | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
  echo "gonogo-${version}-${os}-$(uname -m)-$(gonogo_profile)-${hash}"
}

# emit KEY VALUE: a step output (GITHUB_OUTPUT), a dotenv variable
# GONOGO_KEY (GONOGO_DOTENV, for GitLab's artifacts:reports:dotenv), and a
# log line. Values are single lines.
emit() {
  local key="$1" value="$2"
  case "$value" in
    *$'\n'* | *$'\r'*) echo "error: the $key output holds a line break" >&2; return 1 ;;
  esac
  if [ -n "${GITHUB_OUTPUT:-}" ]; then
    printf '%s=%s\n' "$key" "$value" >>"$GITHUB_OUTPUT"
  fi
  if [ -n "${GONOGO_DOTENV:-}" ]; then
    printf 'GONOGO_%s=%s\n' "$(printf '%s' "$key" | tr 'a-z-' 'A-Z_')" "$value" >>"$GONOGO_DOTENV"
  fi
  printf '  %s=%s\n' "$key" "$value"
}

# What gonogo's exit status means (src/exit_codes.rs).
exit_meaning() {
  case "$1" in
    0) echo "GO" ;;
    1) echo "NO-GO: a required step failed" ;;
    2) echo "usage or scenario error: nothing ran" ;;
    3) echo "harness or infrastructure error" ;;
    4) echo "INCONCLUSIVE: a required step could not run" ;;
    5) echo "the evidence does not match its manifest" ;;
    130) echo "interrupted" ;;
    *) echo "unexpected exit status $1" ;;
  esac
}
