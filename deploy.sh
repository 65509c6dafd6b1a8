#!/usr/bin/env bash
# Deploy the Segment → Novu bridge as a Cloud Run function (gen 2, HTTP trigger).
#
# Idempotent: secrets and the service account are created only when missing; existing secrets are
# never overwritten. Secret values are read from stdin (hidden prompt on a terminal), never from argv.
# Every gcloud command is echoed to stderr with a "+ " prefix; --dry-run runs only the read-only ones.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: deploy.sh [options]

Deploys the Segment → Novu bridge as a Cloud Run function (gen 2) with gcloud.
Missing secrets are created, reading one value per secret from stdin (a hidden
prompt on a terminal): first the Novu API key, then the Segment shared secret.
Existing secrets are left as they are.

Options (environment variable in brackets):
  --project P              Google Cloud project [DEPLOY_PROJECT]
                           (default: gcloud config get-value project)
  --region R               region [DEPLOY_REGION] (default: us-central1)
  --name N                 function name [DEPLOY_NAME] (default: segment-novu)
  --novu-key-secret NAME   secret holding the Novu API key [DEPLOY_NOVU_KEY_SECRET]
                           (default: novu-api-key)
  --segment-secret NAME    secret holding the Segment shared secret [DEPLOY_SEGMENT_SECRET]
                           (default: segment-shared-secret)
  --no-segment-secret      deploy without signature checking (DEPLOY_SEGMENT_SECRET="")
  --service-account EMAIL  runtime identity [DEPLOY_SERVICE_ACCOUNT]
                           (default: segment-novu@P.iam.gserviceaccount.com, created if missing)
  --novu-api-url URL       Novu API base URL [DEPLOY_NOVU_API_URL]
                           (default: https://api.novu.co; EU: https://eu.api.novu.co)
  --min-instances N        instances kept warm [DEPLOY_MIN_INSTANCES] (default: 0)
  --max-instances N        most instances at once [DEPLOY_MAX_INSTANCES] (default: 10; see docs/deploy.md)
  --env KEY=VALUE          extra environment variable for the function (repeatable)
  --dry-run                print the gcloud commands, run only read-only ones [DEPLOY_DRY_RUN=1]
  -h, --help               show this help

Examples:
  ./deploy.sh --project my-project
  printf '%s\n%s\n' "$NOVU_KEY" "$SEGMENT_SECRET" | ./deploy.sh --project my-project
  ./deploy.sh --project my-project --region europe-west1 --novu-api-url https://eu.api.novu.co
EOF
}

die() {
  printf 'deploy.sh: %s\n' "$1" >&2
  exit "${2:-1}"
}

usage_error() {
  printf 'deploy.sh: %s\n\n' "$1" >&2
  usage >&2
  exit 2
}

readonly RUNTIME=python313 TIMEOUT=60s MEMORY=512Mi CPU=1 CONCURRENCY=16
readonly DEFAULT_ACCOUNT_ID=segment-novu

project=${DEPLOY_PROJECT:-}
region=${DEPLOY_REGION:-us-central1}
name=${DEPLOY_NAME:-segment-novu}
novu_key_secret=${DEPLOY_NOVU_KEY_SECRET:-novu-api-key}
segment_secret=${DEPLOY_SEGMENT_SECRET-segment-shared-secret}
service_account=${DEPLOY_SERVICE_ACCOUNT:-}
novu_api_url=${DEPLOY_NOVU_API_URL:-https://api.novu.co}
min_instances=${DEPLOY_MIN_INSTANCES:-0}
max_instances=${DEPLOY_MAX_INSTANCES:-10}
dry_run=${DEPLOY_DRY_RUN:-0}
extra_env=()

need_value() {
  (($# >= 2)) || usage_error "$1 needs a value"
}

while (($#)); do
  case $1 in
    --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
  esac
  case $1 in
    --project) need_value "$@"; project=$2; shift ;;
    --region) need_value "$@"; region=$2; shift ;;
    --name) need_value "$@"; name=$2; shift ;;
    --novu-key-secret) need_value "$@"; novu_key_secret=$2; shift ;;
    --segment-secret) need_value "$@"; segment_secret=$2; shift ;;
    --no-segment-secret) segment_secret= ;;
    --service-account) need_value "$@"; service_account=$2; shift ;;
    --novu-api-url) need_value "$@"; novu_api_url=$2; shift ;;
    --min-instances) need_value "$@"; min_instances=$2; shift ;;
    --max-instances) need_value "$@"; max_instances=$2; shift ;;
    --env) need_value "$@"; extra_env+=("$2"); shift ;;
    --dry-run) dry_run=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option: $1" ;;
  esac
  shift
done

case $dry_run in
  0 | false | no | "") dry_run=0 ;;
  *) dry_run=1 ;; # anything else errs on the side of changing nothing
esac

# Trace of gcloud commands, on the original stderr even where a command's own output is silenced.
exec 3>&2

# Print a command the way it could be pasted back into a shell.
show() {
  local out=+ arg
  for arg in "$@"; do
    if [[ $arg =~ ^[][A-Za-z0-9_./:=@,+^%-]+$ ]]; then
      out+=" $arg"
    else
      out+=" '${arg//\'/\'\\\'\'}'"
    fi
  done
  printf '%s\n' "$out" >&3
}

# Read-only gcloud call: always runs, also in a dry run.
query() {
  show gcloud "$@"
  gcloud "$@"
}

# Mutating gcloud call: skipped in a dry run.
change() {
  show gcloud "$@"
  ((dry_run)) || gcloud "$@"
}

# Runs a read-only "describe": true if the resource exists, false if gcloud says NOT_FOUND.
# Any other failure (no permission, say) stops the script; a dry run says so in one line and goes on.
# A dry run without a usable gcloud checks nothing and plans as if nothing existed yet.
exists() {
  local err
  show gcloud "$@"
  if ((!gcloud_usable)); then
    echo "  (not checked: $gcloud_problem; the plan assumes it does not exist)" >&2
    return 1
  fi
  err=$(gcloud "$@" 2>&1 >/dev/null) && return 0
  [[ $err != *NOT_FOUND* ]] || return 1
  ((dry_run)) || { printf '%s\n' "$err" >&2; die "gcloud $1 $2 failed; fix the error above and run again"; }
  echo "  (not checked: gcloud failed: $(first_error_line "$err"); the plan assumes it does not exist)" >&2
  return 1
}

# The line of a gcloud error worth showing: its first "ERROR:" line, else its first line.
first_error_line() {
  local line
  while IFS= read -r line; do
    if [[ $line == ERROR:* ]]; then printf '%s' "${line#ERROR: }"; return; fi
  done <<<"$1"
  printf '%s' "${1%%$'\n'*}"
}

[[ $min_instances =~ ^[0-9]+$ ]] || usage_error "--min-instances must be a whole number"
[[ $max_instances =~ ^[1-9][0-9]*$ ]] || usage_error "--max-instances must be a whole number of at least 1"
((max_instances >= min_instances)) || usage_error "--max-instances must be at least --min-instances"
[[ -n $region && -n $name && -n $novu_key_secret ]] || usage_error "--region, --name and --novu-key-secret cannot be empty"
secrets=("$novu_key_secret")
[[ -z $segment_secret ]] || secrets+=("$segment_secret")
for secret in "${secrets[@]}"; do
  [[ $secret =~ ^[A-Za-z0-9_-]{1,255}$ ]] || usage_error "invalid secret name: $secret"
done
for pair in ${extra_env[@]+"${extra_env[@]}"}; do
  [[ $pair =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || usage_error "--env expects KEY=VALUE, got: $pair"
  case ${pair%%=*} in
    NOVU_API_URL | NOVU_API_KEY | SEGMENT_SHARED_SECRET | THREADS | GOOGLE_CLOUD_PROJECT)
      usage_error "--env cannot set ${pair%%=*}: the script sets it" ;;
  esac
done

cd "$(dirname "${BASH_SOURCE[0]}")"
# Can gcloud answer for this account? A real deploy needs it; a dry run shows the plan either way.
gcloud_usable=1 gcloud_problem=
if ! command -v gcloud >/dev/null; then
  gcloud_usable=0 gcloud_problem="gcloud is not installed"
  ((dry_run)) || die "gcloud not found: install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install)"
elif [[ -z $(gcloud auth list --filter=status:ACTIVE --format='value(account)' 2>/dev/null) ]]; then
  gcloud_usable=0 gcloud_problem="gcloud is not logged in"
  ((dry_run)) || die "gcloud is not logged in: run 'gcloud auth login' (or activate a service account) and run again"
fi
if ((!gcloud_usable)); then
  echo "Dry run: $gcloud_problem, so nothing in Google Cloud is checked; this is the whole plan." >&2
fi
if [[ -z $project ]]; then
  if command -v gcloud >/dev/null; then  # gcloud's own settings: read even when not logged in
    project=$(query config get-value project 2>/dev/null) || true
  fi
  if [[ -z $project ]]; then
    ((dry_run)) || die "no project: pass --project or run 'gcloud config set project P'"
    project=PROJECT
    echo "Dry run: no project given (--project); the plan shows PROJECT." >&2
  fi
fi
service_account=${service_account:-$DEFAULT_ACCOUNT_ID@$project.iam.gserviceaccount.com}

env_vars=("NOVU_API_URL=$novu_api_url" "NOVU_API_KEY=projects/$project/secrets/$novu_key_secret")
[[ -z $segment_secret ]] || env_vars+=("SEGMENT_SHARED_SECRET=projects/$project/secrets/$segment_secret")
# glibc's allocator keeps freed multi-megabyte buffers (a 4,000-event batch parses into tens of MB)
# unless told to hand them back: these keep an instance's memory flat across big batches.
env_vars+=("THREADS=$CONCURRENCY" "GOOGLE_CLOUD_PROJECT=$project"
  "MALLOC_MMAP_THRESHOLD_=131072" "MALLOC_TRIM_THRESHOLD_=131072" ${extra_env[@]+"${extra_env[@]}"})
for pair in "${env_vars[@]}"; do
  # '@' separates the variables in --set-env-vars=^@^..., so no value may contain it.
  [[ $pair != *@* ]] || usage_error "environment values cannot contain '@': ${pair%%=*}"
done
joined_env=$(IFS=@; printf '%s' "${env_vars[*]}")

# 1. Secrets: find the missing ones and read all their values before changing anything.
missing=()
for secret in "${secrets[@]}"; do
  exists secrets describe "$secret" --project="$project" || missing+=("$secret")
done
values=()
if ((${#missing[@]})) && ((!dry_run)); then
  for secret in "${missing[@]}"; do
    [[ ! -t 0 ]] || printf 'Value for new secret %s (input hidden): ' "$secret" >&2
    value=
    IFS= read -rs value || true
    [[ ! -t 0 ]] || printf '\n' >&2
    [[ -n $value ]] || die "no value on stdin for new secret $secret"
    # A blank credential would turn its check off: the bridge refuses one, so refuse it here first.
    [[ $value = *[![:space:]]* ]] || die "the value for new secret $secret is blank: give the secret itself"
    values+=("$value")
  done
fi
for ((i = 0; i < ${#missing[@]}; i++)); do
  change secrets create "${missing[i]}" --replication-policy=automatic --project="$project"
  show gcloud secrets versions add "${missing[i]}" --data-file=- --project="$project"
  ((dry_run)) || printf '%s' "${values[i]}" |
    gcloud secrets versions add "${missing[i]}" --data-file=- --project="$project" ||
    die "secret ${missing[i]} exists but has no value: add one with the command above"
done
unset value values

# 2. Runtime service account.
if ! exists iam service-accounts describe "$service_account" --project="$project"; then
  account_id=${service_account%@"$project".iam.gserviceaccount.com}
  [[ $account_id != "$service_account" ]] ||
    die "service account $service_account not found (only accounts of project $project are created)"
  change iam service-accounts create "$account_id" --display-name="Segment to Novu bridge" --project="$project"
fi

# 3. Secret access, per secret (never project-wide). A new account can take a few seconds to
#    become visible to IAM, hence the retries.
for secret in "${secrets[@]}"; do
  for attempt in 1 2 3 4 5; do
    change secrets add-iam-policy-binding "$secret" --member="serviceAccount:$service_account" \
      --role=roles/secretmanager.secretAccessor --project="$project" >/dev/null && break
    ((attempt < 5)) || die "could not grant access to secret $secret"
    sleep $((attempt * 3))
  done
done

# 4. The function itself, from this directory (.gcloudignore trims the upload).
change functions deploy "$name" --gen2 --runtime="$RUNTIME" --region="$region" --source=. \
  --entry-point=handler --trigger-http --allow-unauthenticated \
  --service-account="$service_account" --project="$project" --min-instances="$min_instances" \
  --max-instances="$max_instances" \
  --timeout="$TIMEOUT" --memory="$MEMORY" --cpu="$CPU" --concurrency="$CONCURRENCY" \
  --set-env-vars="^@^$joined_env"

url_command=(functions describe "$name" --gen2 --region="$region" --project="$project"
  --format='value(serviceConfig.uri)')
if ((dry_run)); then
  show gcloud "${url_command[@]}"
  echo "Dry run: nothing was changed."
else
  url=$(query "${url_command[@]}")
  echo "$url"
  echo "Paste this URL into Segment as the webhook URL (and the Segment shared secret as the signing secret)."
  echo "Batches: Segment signs only a batch's first event, which the bridge refuses; sign the whole body, or"
  echo "set SEGMENT_AUTH_TOKEN (--env) and send it as 'Authorization: Bearer <token>' (Webhooks (Actions) can add headers)."
fi
