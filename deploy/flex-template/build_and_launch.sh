#!/usr/bin/env bash
# Builds beamforce's Dataflow Flex Template and launches jobs from it (docs/production.md explains each step).
#   deploy/flex-template/build_and_launch.sh build
#       checks metadata.json against the pipeline's options, builds the worker and template images with
#       Cloud Build, and writes the template spec to $TEMPLATE_FILE
#   deploy/flex-template/build_and_launch.sh run --parameters input=gs://b/events/*.jsonl.gz [gcloud flags...]
#       launches a job from the spec; the flags after `run` go to `gcloud dataflow flex-template run`
# Variables: PROJECT, REGION and BUCKET (required); REPOSITORY (an Artifact Registry Docker repository in
# REGION, default beamforce), TAG (default: the commit), and WORKER_IMAGE, TEMPLATE_IMAGE, TEMPLATE_FILE
# to override the names built from them. Salesforce credentials are not among them: see docs/production.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${PROJECT:?set PROJECT to the Google Cloud project id}"
: "${REGION:?set REGION to the Dataflow region, e.g. europe-west1}"
: "${BUCKET:?set BUCKET to a Cloud Storage bucket (no gs://) for the template, staging and temp files}"
REPOSITORY=${REPOSITORY:-beamforce}
TAG=${TAG:-$(git rev-parse --short=12 HEAD 2>/dev/null || date -u +%Y%m%dT%H%M%SZ)}
REGISTRY="${REGION}-docker.pkg.dev/${PROJECT}/${REPOSITORY}"
WORKER_IMAGE=${WORKER_IMAGE:-${REGISTRY}/beamforce-worker:${TAG}}
TEMPLATE_IMAGE=${TEMPLATE_IMAGE:-${REGISTRY}/beamforce-template:${TAG}}
TEMPLATE_FILE=${TEMPLATE_FILE:-gs://${BUCKET}/templates/beamforce-${TAG}.json}
PYTHON=${PYTHON:-.venv/bin/python}

build() {
  # A template whose parameters are not the pipeline's options would refuse (or drop) what users give.
  "$PYTHON" -m tools.flex_metadata --check
  gcloud builds submit . \
    --project "$PROJECT" \
    --region "$REGION" \
    --config deploy/flex-template/cloudbuild.yaml \
    --ignore-file deploy/.gcloudignore \
    --substitutions "_WORKER_IMAGE=${WORKER_IMAGE},_TEMPLATE_IMAGE=${TEMPLATE_IMAGE}"
  gcloud dataflow flex-template build "$TEMPLATE_FILE" \
    --project "$PROJECT" \
    --image "$TEMPLATE_IMAGE" \
    --sdk-language PYTHON \
    --metadata-file deploy/flex-template/metadata.json
  echo "template: $TEMPLATE_FILE (launcher $TEMPLATE_IMAGE, workers $WORKER_IMAGE)"
}

run() {
  gcloud dataflow flex-template run "beamforce-$(date -u +%Y%m%d-%H%M%S)" \
    --project "$PROJECT" \
    --region "$REGION" \
    --template-file-gcs-location "$TEMPLATE_FILE" \
    --staging-location "gs://${BUCKET}/staging" \
    --temp-location "gs://${BUCKET}/temp" \
    "$@"
}

case "${1:-}" in
  build) shift; build "$@" ;;
  run) shift; run "$@" ;;
  *) sed -n '2,10p' "$0" >&2; exit 2 ;;
esac
