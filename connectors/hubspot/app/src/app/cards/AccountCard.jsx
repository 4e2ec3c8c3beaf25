// The Customer Success Engine card on HubSpot company records (record tab and sidebar).
// It renders the JSON our backend answers at /cards/hubspot (contract: app/cards/card.schema.json) and posts the
// card's actions back through the same signed route; hubspot.fetch signs every request with the app's secret.
import React, { useCallback, useEffect, useState } from "react";
import {
  Alert,
  Button,
  DescriptionList,
  DescriptionListItem,
  Divider,
  Flex,
  Heading,
  Input,
  List,
  LoadingSpinner,
  Select,
  Tag,
  Text,
  hubspot,
} from "@hubspot/ui-extensions";

// Must be listed in app-hsmeta.json's permittedUrls.fetch; change both when deploying.
export const BACKEND_URL = "https://cse.example.com/cards/hubspot";
const TIMEOUT_MS = 10000;
const TAG_VARIANTS = { healthy: "success", at_risk: "warning", critical: "danger", churning: "danger" };

hubspot.extend(({ context }) => <AccountCard companyId={context.crm.objectId} fetcher={hubspot.fetch} />);

const percent = (value) => (value === null || value === undefined ? "—" : `${Math.round(value * 100)} %`);
const shown = (value, suffix = "") => (value === null || value === undefined ? "—" : `${value}${suffix}`);
// The one risk scale: calibrated churn probability within the horizon, from the model or from health (source).
const riskText = (churn) => {
  const p = churn.risk ?? churn.probability;
  if (p === null || p === undefined) return "—";
  const horizon = churn.horizon_days ? ` in ${churn.horizon_days} days` : "";
  return `${percent(p)}${horizon}${churn.source ? ` (${churn.source})` : ""}`;
};
const warningText = (churn) => {
  if (churn.early_warning === null || churn.early_warning === undefined) return "—";
  const within = `within ${churn.warning_horizon_days} days`;
  return churn.early_warning ? `Flagged: likely to churn ${within}` : `Not flagged (${within})`;
};

// The program engine's state. A control-group enrollment is followed, never contacted: the card says so and shows no
// step or due date for it, so nothing reads as something to do for that program.
const day = (iso) => (iso ?? "—").slice(0, 10);
const STATUS_WORDS = { on_track: "On track", behind: "Behind", stuck: "Stuck" };
const MARKS = { met: "✓", missed: "✗", pending: "○" };
export const enrollmentText = (e) => {
  if (e.control) return `${e.title}: control group — the program does not contact this account; nothing to do for it`;
  if (e.status === "completed") return `${e.title}: completed ${day(e.ended_at)}`;
  if (e.status === "exited") return `${e.title}: exited (${e.exit_reason ?? "—"}) ${day(e.ended_at)}`;
  const step = e.step ? `${e.step.label} (${e.step.channel_label}, ${e.step.outcome} ${day(e.step.at)})` : "not started";
  return `${e.title}: at ${step}${e.next_due_at ? ` · next step due ${day(e.next_due_at)}` : ""}`;
};
export const onboardingText = (o) => {
  if (!o.tracked) return "Not tracked (customer before the onboarding program)";
  const status = o.status ? ` · ${STATUS_WORDS[o.status]}` : "";
  const control = o.control ? " · control group (tracked only, not contacted)" : "";
  return `Day ${o.day} · ${o.phase} · ${o.met}/${o.total} milestones${status}${control}`;
};
export const milestoneText = (m) =>
  `${MARKS[m.state]} ${m.name} ${m.state === "met" ? `(met ${m.met_on})` : `(${m.state === "missed" ? "missed, " : ""}due day ${m.due_day})`}`;

async function call(fetcher, url, options) {
  const response = await fetcher(url, { timeout: TIMEOUT_MS, ...options });
  const payload = await response.json();
  if (!response.ok) {
    throw new Error(payload.error || `The backend answered ${response.status}`);
  }
  return payload;
}

export function AccountCard({ companyId, fetcher }) {
  const [card, setCard] = useState(null);
  const [notice, setNotice] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState("");
  const [band, setBand] = useState("healthy");
  const [program, setProgram] = useState("");

  useEffect(() => {
    call(fetcher, `${BACKEND_URL}?companyId=${encodeURIComponent(companyId)}`, { method: "GET" })
      .then((payload) => setCard(payload.card))
      .catch((err) => setError(err.message));
  }, [companyId, fetcher]);

  const act = useCallback(
    (action) => {
      setBusy(true);
      setError(null);
      call(fetcher, BACKEND_URL, { method: "POST", body: { companyId: String(companyId), action } })
        .then((payload) => {
          setCard(payload.card);
          setNotice(payload.notice);
          setNote("");
        })
        .catch((err) => setError(err.message))
        .finally(() => setBusy(false));
    },
    [companyId, fetcher],
  );

  if (error && !card) {
    return <Alert title="Customer Success Engine" variant="error">{error}</Alert>;
  }
  if (!card) {
    return <LoadingSpinner label="Loading the account card" />;
  }
  const { health, churn, expansion, onboarding } = card;
  const enroll = card.actions.find((a) => a.type === "enroll");
  const programs = (enroll?.programs ?? []).map((p) => ({ label: enroll.program_labels?.[p] ?? p, value: p }));
  const override = card.actions.find((a) => a.type === "override");
  const bands = (override?.bands ?? []).map((b) => ({ label: override.band_labels?.[b] ?? b, value: b }));
  return (
    <Flex direction="column" gap="sm">
      <Flex direction="row" gap="sm" align="center">
        <Heading>{card.account.name}</Heading>
        <Tag variant={TAG_VARIANTS[health.band] ?? "default"}>{health.band_label ?? "Not scored yet"}</Tag>
      </Flex>
      {health.override && (
        <Alert title="Band overridden" variant="info">
          {`${health.override.band_label} by ${health.override.author} until ${health.override.expires_at.slice(0, 10)}: ${health.override.reason} (scored: ${health.computed_band_label ?? "—"})`}
        </Alert>
      )}
      {notice && <Alert title="Done" variant="success">{notice}</Alert>}
      {error && <Alert title="Not done" variant="error">{error}</Alert>}
      <DescriptionList direction="row">
        <DescriptionListItem label="Health">{shown(health.score)}</DescriptionListItem>
        <DescriptionListItem label="7-day trend">{shown(health.trend_7d)}</DescriptionListItem>
        <DescriptionListItem label="Churn risk">{riskText(churn)}</DescriptionListItem>
        <DescriptionListItem label="Early warning">{warningText(churn)}</DescriptionListItem>
        <DescriptionListItem label="Time to churn">{shown(churn.days_to_churn, " days")}</DescriptionListItem>
        <DescriptionListItem label="Expansion">{expansion.type ? `${expansion.type} (${shown(expansion.potential)})` : "—"}</DescriptionListItem>
        <DescriptionListItem label="Onboarding">{onboardingText(onboarding)}</DescriptionListItem>
      </DescriptionList>
      <Heading>Programs</Heading>
      <List variant="unordered-styled">
        {card.program.enrollments.length
          ? card.program.enrollments.map((e) => <Text key={`${e.program}-${e.entered_at}`}>{enrollmentText(e)}</Text>)
          : [<Text key="none">Not in a program</Text>]}
      </List>
      {onboarding.milestones.length > 0 && <Heading>Onboarding milestones</Heading>}
      {onboarding.milestones.length > 0 && (
        <List variant="unordered-styled">
          {onboarding.milestones.map((m) => <Text key={m.key}>{milestoneText(m)}</Text>)}
        </List>
      )}
      <Heading>Why</Heading>
      <List variant="unordered-styled">
        {card.drivers.length ? card.drivers.map((d) => <Text key={d}>{d}</Text>) : [<Text key="none">No weak factor</Text>]}
      </List>
      {card.recommended_action && <Text format={{ fontWeight: "bold" }}>{`Next: ${card.recommended_action}`}</Text>}
      <Heading>Open tasks</Heading>
      <List variant="unordered-styled">
        {card.tasks.length
          ? card.tasks.map((t, i) => <Text key={`t${i}`}>{`${t.title} (due ${day(t.due)})`}</Text>)
          : [<Text key="none">No open task</Text>]}
      </List>
      {card.program.enrollment_requests.length > 0 && (
        <Text>{`Program requests: ${card.program.enrollment_requests.map((r) => `${r.title} (${r.status})`).join(", ")}`}</Text>
      )}
      <Divider />
      <Input label="Note or reason" name="note" value={note} onChange={setNote} />
      <Flex direction="row" gap="xs" wrap="wrap">
        {["call", "email", "meeting"].map((kind) => (
          <Button key={kind} disabled={busy || !note} onClick={() => act({ type: "touchpoint", kind, note })}>
            {`Log ${kind}`}
          </Button>
        ))}
      </Flex>
      <Flex direction="row" gap="xs" align="end">
        <Select label="Hold band at" name="band" value={band} onChange={setBand}
          options={bands} />
        <Button disabled={busy || !note} onClick={() => act({ type: "override", band, reason: note, days: 14 })}>
          Snooze 14 days
        </Button>
        {health.override && (
          <Button variant="secondary" disabled={busy} onClick={() => act({ type: "clear_override" })}>End override</Button>
        )}
      </Flex>
      <Flex direction="row" gap="xs" align="end">
        <Select label="Program" name="program" value={program} onChange={setProgram}
          options={programs} />
        <Button disabled={busy || !program} onClick={() => act({ type: "enroll", program })}>Request enrollment</Button>
      </Flex>
    </Flex>
  );
}
