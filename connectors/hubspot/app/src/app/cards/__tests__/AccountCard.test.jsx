// The card against a fake hubspot.fetch; @hubspot/ui-extensions is replaced by plain DOM stand-ins, because its
// components only render inside HubSpot's sandboxed iframe.
import React from "react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import sample from "../../../../../../../tests/fixtures/card.sample.json";

vi.mock("@hubspot/ui-extensions", () => {
  const box = (tag) => ({ children }) => React.createElement(tag, null, children);
  return {
    hubspot: { extend: vi.fn(), fetch: vi.fn() },
    Alert: ({ title, children }) => React.createElement("div", { role: "alert" }, `${title}: `, children),
    Button: ({ children, onClick, disabled }) => React.createElement("button", { onClick, disabled }, children),
    DescriptionList: box("dl"),
    DescriptionListItem: ({ label, children }) => React.createElement("div", null, `${label}: `, children),
    Divider: () => React.createElement("hr"),
    Flex: box("div"),
    Heading: box("h2"),
    Input: ({ label, value, onChange }) =>
      React.createElement("input", { "aria-label": label, value, onChange: (e) => onChange(e.target.value) }),
    List: box("ul"),
    LoadingSpinner: ({ label }) => React.createElement("p", null, label),
    Select: ({ label, value, options, onChange }) =>
      React.createElement("select", { "aria-label": label, value, onChange: (e) => onChange(e.target.value) },
        React.createElement("option", { value: "" }, "—"),
        options.map((o) => React.createElement("option", { key: o.value, value: o.value }, o.label))),
    Tag: box("strong"),
    Text: box("span"),
  };
});

const { AccountCard, BACKEND_URL } = await import("../AccountCard.jsx");

const answer = (payload, status = 200) => Promise.resolve({ ok: status < 400, status, json: () => Promise.resolve(payload) });

afterEach(cleanup);

describe("AccountCard", () => {
  it("renders the card the backend answers", async () => {
    const fetcher = vi.fn(() => answer(sample));
    render(<AccountCard companyId={1001} fetcher={fetcher} />);
    expect(await screen.findByText("Northwind Traders")).toBeTruthy();
    expect(fetcher).toHaveBeenCalledWith(`${BACKEND_URL}?companyId=1001`, expect.objectContaining({ method: "GET" }));
    expect(screen.getByText("Critical", { selector: "strong" })).toBeTruthy();
    expect(screen.getByText("Few of the core features are in use")).toBeTruthy();
    expect(screen.getByText("Churn risk: 37 % in 30 days (model)")).toBeTruthy();
    expect(screen.getByText("Early warning: Flagged: likely to churn within 90 days")).toBeTruthy();
    expect(screen.getByText("Logins are lower than typical")).toBeTruthy(); // the model's top driver first
    expect(screen.getByText(/Offer a training session/)).toBeTruthy();
  });

  it("shows the program engine's state: enrollments, control group and onboarding milestones", async () => {
    const fetcher = vi.fn(() => answer(sample));
    render(<AccountCard companyId={1001} fetcher={fetcher} />);
    await screen.findByText("Northwind Traders");
    expect(screen.getByText("Onboarding: Day 40 · adoption · 7/15 milestones · Behind")).toBeTruthy();
    expect(screen.getByText("Onboarding, days 0-90: at First outcome review (CRM task, sent 2026-11-24) · next step due 2026-12-24"))
      .toBeTruthy();
    expect(screen.getByText("Onboarding: setup stalled: exited (recovered) 2026-11-20")).toBeTruthy();
    expect(screen.getByText("Program requests: Retention campaigns by risk tier (requested)")).toBeTruthy();
    // The control-group enrollment: said so, with no step and no due date that could read as something to do.
    const control = screen.getByText(/^Quarterly NPS survey:/);
    expect(control.textContent).toBe(
      "Quarterly NPS survey: control group — the program does not contact this account; nothing to do for it");
    expect(screen.getByText("✓ Welcome sent (met 2026-10-25)")).toBeTruthy();
    expect(screen.getByText("✗ Core features used (missed, due day 14)")).toBeTruthy();
    expect(screen.getByText("○ Graduated (due day 90)")).toBeTruthy();
    expect(screen.getAllByText(/^[✓✗○] /)).toHaveLength(15);
  });

  it("says when the account is in no program and onboarding was not tracked", async () => {
    const quiet = structuredClone(sample);
    quiet.card.program.enrollments = [];
    quiet.card.onboarding = { tracked: false, day: 400, phase: null, status: null, control: false, met: 0, total: 15,
      milestones: [] };
    render(<AccountCard companyId={1001} fetcher={vi.fn(() => answer(quiet))} />);
    await screen.findByText("Northwind Traders");
    expect(screen.getByText("Not in a program")).toBeTruthy();
    expect(screen.getByText("Onboarding: Not tracked (customer before the onboarding program)")).toBeTruthy();
    expect(screen.queryByText("Onboarding milestones")).toBeNull();
  });

  it("marks an onboarding control account as tracked only", async () => {
    const control = structuredClone(sample);
    control.card.onboarding.control = true;
    control.card.program.enrollments[0] = { ...control.card.program.enrollments[0], control: true, step: null,
      next_due_at: null };
    render(<AccountCard companyId={1001} fetcher={vi.fn(() => answer(control))} />);
    await screen.findByText("Northwind Traders");
    expect(screen.getByText(/control group \(tracked only, not contacted\)$/)).toBeTruthy();
    expect(screen.queryByText(/next step due/)).toBeNull();
  });

  it("posts an action through the signed route and shows the updated card", async () => {
    const updated = structuredClone(sample);
    updated.card.health.override = { band: "at_risk", band_label: "At risk", reason: "Exec sponsor re-engaged",
      author: "csm@example.com", created_at: "2026-12-04T10:00:00", expires_at: "2026-12-18T10:00:00" };
    updated.card.health.band = "at_risk";
    updated.card.health.band_label = "At risk";
    updated.notice = "Band set to At risk until 2026-12-18";
    const fetcher = vi.fn().mockImplementationOnce(() => answer(sample)).mockImplementationOnce(() => answer(updated));
    render(<AccountCard companyId={1001} fetcher={fetcher} />);
    await screen.findByText("Northwind Traders");
    fireEvent.change(screen.getByLabelText("Note or reason"), { target: { value: "Exec sponsor re-engaged" } });
    const hold = screen.getByLabelText("Hold band at");
    // The choices read as the bands' labels; the action still posts the band's value.
    expect([...hold.options].slice(1).map((o) => o.textContent)).toEqual(["Healthy", "At risk", "Critical", "Churning"]);
    // The program choices read as the programs' titles; a request posts the program's key.
    const program = screen.getByLabelText("Program");
    expect([...program.options].slice(1).map((o) => [o.textContent, o.value])).toEqual([
      ["Onboarding, days 0-90", "onboarding"], ["Adoption push", "adoption"], ["Renewal preparation", "renewal"]]);
    fireEvent.change(hold, { target: { value: "at_risk" } });
    fireEvent.click(screen.getByText("Snooze 14 days"));
    await waitFor(() => expect(screen.getByText(/Band set to At risk/)).toBeTruthy());
    expect(fetcher).toHaveBeenLastCalledWith(BACKEND_URL, expect.objectContaining({
      method: "POST",
      body: { companyId: "1001", action: { type: "override", band: "at_risk", reason: "Exec sponsor re-engaged", days: 14 } },
    }));
    expect(screen.getByText("At risk", { selector: "strong" })).toBeTruthy();
    expect(screen.getByText(/^Band overridden: At risk by csm@example.com until 2026-12-18: Exec sponsor re-engaged \(scored: Critical\)$/))
      .toBeTruthy();
    expect(screen.queryByText(/at_risk/)).toBeNull();
    expect(screen.getByText("End override")).toBeTruthy();
  });

  it("shows the backend's refusal instead of a card", async () => {
    const fetcher = vi.fn(() => answer({ error: "this record is not linked to an account" }, 404));
    render(<AccountCard companyId={4040} fetcher={fetcher} />);
    expect(await screen.findByRole("alert")).toHaveProperty("textContent",
      "Customer Success Engine: this record is not linked to an account");
  });
});
