// The demo page's controls, each firing events through the tag (a file: no inline script).
(function () {
  var na = window.netraAnalytics;
  var $ = function (id) { return document.getElementById(id); };
  var thread = 'thread-' + Date.now().toString(36);
  var messages = 0;
  function showUser(signedIn) { $('who').textContent = signedIn ? window.netraDemo.user : 'signed out'; }
  showUser(window.netraDemo.signedIn);

  function note(text) { $('log').textContent = new Date().toISOString().slice(11, 19) + ' ' + text + '\n' + $('log').textContent; }
  function showConsent(text) { $('consent-state').textContent = text; }
  showConsent(window.netraDemo.consent === 'ask' ? 'not asked yet' : window.netraDemo.consent);
  setInterval(function () {
    $('pending').textContent = na.pending();
    $('session').textContent = na.sessionId;
    $('anonymous').textContent = na.anonymousId();
  }, 250);

  $('consent-accept').onclick = function () { na.setConsent(true); showConsent('granted'); note('consent granted'); };
  $('consent-decline').onclick = function () { na.setConsent(false); showConsent('denied'); note('consent declined'); };
  $('flush-now').onclick = function () { na.flush(); };
  // Signing in links this browser's anonymous id to the user; signing out starts a new one.
  $('sign-in').onclick = function () { na.identify(window.netraDemo.user); showUser(true); note('signed in'); };
  $('sign-out').onclick = function () { na.reset(); showUser(false); note('signed out'); };

  function say(who, text) {
    var p = document.createElement('div');
    p.className = who; p.textContent = (who === 'user' ? 'You: ' : 'AI: ') + text;
    $('messages').appendChild(p); $('messages').scrollTop = 1e9;
  }

  // The app announces chat messages as DOM events; the tag captures them (the spec's auto-capture).
  function chatMessage(detail) { document.dispatchEvent(new CustomEvent('netra_chat_message', { detail: detail })); }

  $('chat-form').onsubmit = function (e) {
    e.preventDefault();
    var text = $('chat-input').value.trim();
    if (!text) return;
    $('chat-input').value = '';
    if (messages === 0) na.threadLifecycle({ thread_id: thread, action: 'created', message_count: 0 });
    messages++;
    say('user', text);
    chatMessage({ thread_id: thread, message_id: 'm' + messages + '-u', message_type: 'user_prompt',
                  prompt_text: text, prompt_length: text.length, is_follow_up: messages > 1 });
    var started = performance.now();
    setTimeout(function () {
      var answer = 'Caching repeated prompts and routing simple ones to a smaller model would cut about 30%.';
      say('ai', answer);
      chatMessage({ thread_id: thread, message_id: 'm' + messages + '-a', message_type: 'ai_response',
                    prompt_length: text.length, response_length: answer.length,
                    response_time_ms: Math.round(performance.now() - started), model_used: 'gpt-4o-mini',
                    tokens_consumed: 180, input_tokens: 60, output_tokens: 120, is_follow_up: false });
    }, 300);
  };
  $('thread-complete').onclick = function () {
    na.threadLifecycle({ thread_id: thread, action: 'completed', message_count: messages * 2 });
    note('thread completed');
  };
  $('feature-cost').onclick = function () {
    na.featureUsage({ feature_name: 'cost_explorer', action: 'open', success: true, duration_ms: 12 });
  };
  $('feature-savings').onclick = function () {
    na.featureUsage({ feature_name: 'cost_explorer', action: 'savings_identified', success: true });
  };
  $('survey-form').onsubmit = function (e) {
    e.preventDefault();
    na.surveyResponse({ survey_id: 'demo-survey', question_id: 'pain', question_type: 'pain_perception',
                        response_scale: Number($('survey-scale').value),
                        ai_spend_last_month: Number($('survey-spend').value),
                        ai_spend_next_quarter: Number($('survey-next').value) });
    note('survey sent');
  };
  $('feedback-form').onsubmit = function (e) {
    e.preventDefault();
    na.feedbackSubmission({ feedback_type: 'nps', score: Number($('nps-score').value),
                            comment: $('feedback-comment').value, context_thread_id: thread });
    note('feedback sent');
  };
  $('throw-error').onclick = function () {
    setTimeout(function () { throw new TypeError('demo error: cannot read the budget'); }, 0);
  };
  $('measure-api').onclick = function () {
    var started = performance.now();
    fetch('/health').then(function (r) {
      na.performanceMetric({ metric_type: 'api_call', duration_ms: Math.round(performance.now() - started),
                             success: r.ok });
    });
  };
})();
