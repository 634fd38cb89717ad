# The token and base URL come from the environment (or --token-file / --base-url).
export INKIT_API_TOKEN INKIT_BASE_URL

inkit-async batch get rb_6WtDgF7RGqdS5Uzea9neZJ rb_2KmPqR8sTuVwXyZaBcDeFg
inkit-async batch get rb_6WtDgF7RGqdS5Uzea9neZJ --json
inkit-async batch list --search invoice --sort=-created_at --limit 5
inkit-async batch wait rb_9HjKlMnOpQrStUvWxYzAbC --timeout 120 --poll-interval 1
inkit-async flow-batch list --limit 3 --json
inkit-async render list --sort=-created_at --limit 3
inkit-async document list --limit 3 --json
