-- wrk script: POST /v1/screenings with a unique death and Idempotency-Key per request.
-- Usage (bench/run.sh does all of this): LFD_BENCH_KEY=<api key> wrk -t2 -c32 -d30s --latency \
--   -s bench/screenings.lua http://127.0.0.1:8000
local key = os.getenv("LFD_BENCH_KEY") or error("set LFD_BENCH_KEY")
-- A new patient each time: a random NHS number in the reserved 999 range with a valid
-- Modulus 11 check digit (a repeated number would flag every death as a possible duplicate of
-- all the others before it, and the benchmark would measure that instead).
local function nhs_number()
  while true do
    local digits = "999" .. string.format("%06d", math.random(0, 999999))
    local sum = 0
    for i = 1, 9 do sum = sum + tonumber(digits:sub(i, i)) * (11 - i) end
    local check = 11 - (sum % 11)
    if check == 11 then check = 0 end
    if check ~= 10 then return digits .. check end
  end
end
local specialties = {"General Medicine","Care of the Elderly","Cardiology","Respiratory",
                     "General Surgery","Oncology","Stroke","Critical Care"}
local counter = 0
thread_tag = thread_tag or "0"
local statuses = {}

function setup(thread)
  thread:set("thread_tag", tostring(math.random(1, 1e9)))
end

local now = os.time()
local died = os.date("!%Y-%m-%dT%H:%M:%S+00:00", now - 3 * 86400)
local admitted = os.date("!%Y-%m-%dT%H:%M:%S+00:00", now - 9 * 86400)
local screened = os.date("!%Y-%m-%dT%H:%M:%S+00:00", now - 2 * 86400)

function init(args)
  math.randomseed(os.time() + (tonumber(thread_tag) or 0))
end

request = function()
  counter = counter + 1
  local ref = string.format("BENCH-%s-%d-%d", thread_tag, counter, math.random(1, 1e9))
  local ld = (counter % 50 == 0) and "true" or "false"
  local expected = (counter % 5 == 0) and "false" or "true"
  local body = string.format([[{"death":{"source_system":"bench","source_reference":"%s",
"nhs_number":"%s","nhs_number_status":"01","given_name":"Bench","family_name":"Synthetic",
"date_of_birth":"1941-05-17","sex":"female","postcode":"LS1 4AP","died_at":"%s",
"place_of_death":"inpatient","site":"Bench General","admitting_specialty":"%s",
"specialty_at_death":"%s","admission_method":"emergency","admitted_at":"%s",
"learning_disability":%s},
"screening":{"examiner":{"name":"Dr Bench","gmc_number":"1234567"},"screened_at":"%s",
"records_reviewed":true,"qap_discussed":true,"bereaved_contacted":true,
"coroner_notified":false,"death_expected":%s}}]],
    ref, nhs_number(), died, specialties[(counter % #specialties) + 1],
    specialties[(counter % #specialties) + 1], admitted, ld, screened, expected)
  return wrk.format("POST", "/v1/screenings", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. key,
    ["Idempotency-Key"] = ref,
  }, body)
end

response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status ~= 201 and (statuses[status] or 0) <= 3 then
    io.stderr:write("unexpected " .. status .. ": " .. string.sub(body, 1, 300) .. "\n")
  end
end

done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  io.write(string.format("requests: %d in %.1fs = %.1f/s; errors: connect %d read %d write %d status %d timeout %d\n",
    summary.requests, seconds, summary.requests / seconds, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout))
  for _, p in ipairs({50, 90, 95, 99}) do
    io.write(string.format("p%d: %.1f ms\n", p, latency:percentile(p) / 1000))
  end
  io.write(string.format("max: %.1f ms\n", latency.max / 1000))
end
